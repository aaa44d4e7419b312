// CLI: in-process runs through a fresh yargs instance with injected stdio, and
// end-to-end runs of the built binary (bin/grl-onnx.js), including pipes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { BIN, ensureBuilt } from './helpers/bin';
import { runCli, CliIO } from '../src/cli/main';
import { loadModel, serializeModel } from '../src/onnx/io';
import { isGrlNode } from '../src/patch/heads';
import { attrFloat } from '../src/onnx/attrs';
import { inspectModel } from '../src/inspect/inspect';
import { expectSameOutputs, feedsFor, runOrt } from './helpers/models';

const ROOT = path.join(__dirname, '..');
const TAGGER = path.join(ROOT, 'models', 'tagger-opset14.onnx');
const SPLICE = '/encoder/layer.1/ffn_norm/Add_1_output_0';

interface Run { code: number; stdout: Buffer; stderr: string }

async function cli(args: string[], opts: { tty?: boolean; stdin?: () => Buffer } = {}): Promise<Run> {
  const out: Buffer[] = [];
  let err = '';
  const io: CliIO = {
    stdout: { write: (c) => out.push(Buffer.from(c)), isTTY: opts.tty },
    stderr: { write: (s) => (err += s) },
    readStdin: opts.stdin,
  };
  const code = await runCli(args, io);
  return { code, stdout: Buffer.concat(out), stderr: err };
}

const grlLambdas = (file: string | Buffer) => (loadModel(file).proto.graph?.node ?? []).filter(isGrlNode).map((n) => [n.name, attrFloat(n, 'lambda')]);

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-cli-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('in-process CLI', () => {
  it("'-' where only files work is a usage line, not a file named '<stdio>'", async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const tok = path.join(ROOT, 'models', 'bert-base-uncased-tokenizer.json');
      const corpus = path.join(ROOT, 'test', 'fixtures', 'corpora', 'sample.conllu');
      const cases: [string[], string][] = [
        [['data', 'prepare', corpus, '--tokenizer', tok, '--label', 'pos=upos', '-o', '-'], "--out '-'"],
        [['data', 'prepare', '-', '--tokenizer', tok, '--label', 'pos=upos', '-o', 'x.jsonl'], "FILE '-'"],
        [['train', TAGGER, '--data', '-', '--loss', 'pos', '--lr', '1', '--batch-size', '1', '--out', 'run'], "--data '-'"],
        [['heads', 'add', TAGGER, '--head', 'a:3', '-o', '-'], "--output '-'"],
      ];
      for (const [args, what] of cases) {
        const r = await cli(args);
        expect([args[0], r.code, r.stderr]).toEqual([args[0], 2, `grl-onnx: ${what}: stdin/stdout is not supported here; give a file (see 'grl-onnx ${args[0]} --help')\n`]);
      }
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('train and artifacts on a model with an op that has no gradient rule: one line, exit 1, nothing written', async () => {
    const m = loadModel(TAGGER);
    const sm = (m.proto.graph?.node ?? []).find((n) => n.op_type === 'Softmax');
    if (!sm) throw new Error('the tagger has a Softmax');
    sm.op_type = 'Hardmax';
    const model = path.join(dir, 'hard.onnx');
    fs.writeFileSync(model, serializeModel(m));
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, `${JSON.stringify({ input_ids: [5, 6, 7], pos: [0, 1, 2], ner: [0, 0, 0] })}\n`);
    for (const args of [
      ['train', model, '--data', data, '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')],
      ['artifacts', model, '--loss', 'pos', '-o', path.join(dir, 'art')],
    ]) {
      const r = await cli(args);
      expect([args[0], r.code]).toEqual([args[0], 1]);
      expect(r.stderr).toMatch(new RegExp(`^grl-onnx: no gradient rule for op Hardmax \\(node '${sm.name}', opset \\d+\\); \`grl-onnx inspect\` lists the ops on a gradient path that have none\n$`));
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['d.jsonl', 'hard.onnx']);
  });

  it('--help lists the commands; patch --help lists its options; --version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toMatch(/grl-onnx inspect <model>/);
    expect(help.stdout.toString()).toMatch(/grl-onnx patch <model>/);
    const ph = await cli(['patch', '--help']);
    expect(ph.code).toBe(0);
    for (const opt of ['--head', '--lambda', '--at', '-o, --output', '--remove', '--in-place', '--external-data', '--json', '--debug']) expect(ph.stdout.toString()).toContain(opt);
    const v = await cli(['--version']);
    expect(v.stdout.toString().trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('patch -o FILE writes the patched model and a summary on stderr', async () => {
    const out = path.join(dir, 'p.onnx');
    const r = await cli(['patch', '--head', 'pos:0.5', '--head', 'ner', TAGGER, '--lambda', '2', '-o', out]);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe(`pos (pos_logits): added GRL 'pos/grl' λ=0.5 at '${SPLICE}'\nner (ner_logits): added GRL 'ner/grl' λ=2 at '${SPLICE}'\nwrote ${out}\n`);
    expect(grlLambdas(out)).toEqual([['pos/grl', 0.5], ['ner/grl', 2]]);
  });

  it('reads stdin with MODEL = -, writes stdout when it is not a terminal, bit-identical outputs', async () => {
    const r = await cli(['patch', '-', '--head', 'pos'], { stdin: () => fs.readFileSync(TAGGER) });
    expect(r.code).toBe(0);
    expect(grlLambdas(r.stdout)).toEqual([['pos/grl', 1]]);
    const feeds = feedsFor(loadModel(TAGGER).proto);
    expectSameOutputs(await runOrt(r.stdout, feeds), await runOrt(TAGGER, feeds));
    const explicit = await cli(['patch', TAGGER, '--head', 'pos', '-o', '-'], { tty: true });
    expect(explicit.code).toBe(0);
    expect(Buffer.compare(explicit.stdout, r.stdout)).toBe(0);
  });

  it('refuses to write a model to a terminal without -o', async () => {
    const r = await cli(['patch', TAGGER, '--head', 'pos'], { tty: true });
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe(`grl-onnx: ${TAGGER}: stdout is a terminal; give -o OUT for the patched model (or -o - to write it there anyway)\n`);
  });

  it('--json reports the changes on stdout (and needs -o FILE)', async () => {
    const out = path.join(dir, 'p.onnx');
    const r = await cli(['patch', TAGGER, '--head', 'ner:0.25', '-o', out, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.toString());
    expect(report).toEqual({
      input: TAGGER, output: out, warnings: [],
      heads: [{ head: 'ner', output: 'ner_logits', action: 'added', lambda: 0.25, spliceTensor: SPLICE, grlNode: 'ner/grl', grlOutput: `${SPLICE}/grl/ner`, rewired: [expect.any(String)] }],
    });
    const bad = await cli(['patch', TAGGER, '--head', 'ner', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('grl-onnx: --json prints its report on stdout; give -o FILE for the model\n');
  });

  it('--remove undoes the patch; re-patching updates λ instead of stacking', async () => {
    const p = path.join(dir, 'p.onnx');
    const p2 = path.join(dir, 'p2.onnx');
    const orig = path.join(dir, 'orig.onnx');
    expect((await cli(['patch', TAGGER, '--head', 'pos', '-o', p])).code).toBe(0);
    const again = await cli(['patch', p, '--head', 'pos:0.75', '-o', p2]);
    expect(again.stderr).toContain("pos (pos_logits): updated GRL 'pos/grl' λ=0.75");
    expect(grlLambdas(p2)).toEqual([['pos/grl', 0.75]]);
    const r = await cli(['patch', p2, '--remove', '-o', orig]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`pos (pos_logits): removed GRL 'pos/grl'\nwrote ${orig}\n`);
    expect(Buffer.compare(fs.readFileSync(orig), serializeModel(loadModel(TAGGER)))).toBe(0);
  });

  it('never overwrites its input unless --in-place', async () => {
    const m = path.join(dir, 'm.onnx');
    fs.copyFileSync(TAGGER, m);
    const r = await cli(['patch', m, '--head', 'pos', '-o', m]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`grl-onnx: ${m}: refusing to overwrite the input model (use --in-place to allow it)\n`);
    expect(Buffer.compare(fs.readFileSync(m), fs.readFileSync(TAGGER))).toBe(0);
    expect((await cli(['patch', m, '--head', 'pos', '--in-place'], { tty: true })).code).toBe(0);
    expect(grlLambdas(m)).toEqual([['pos/grl', 1]]);
    expect(fs.readdirSync(dir)).toEqual(['m.onnx']);
  });

  it('--external-data stores large initializers next to the output', async () => {
    const out = path.join(dir, 'ext.onnx');
    expect((await cli(['patch', TAGGER, '--head', 'pos', '-o', out, '--external-data'])).code).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['ext.onnx', 'ext.onnx.data']);
    const feeds = feedsFor(loadModel(TAGGER).proto);
    expectSameOutputs(await runOrt(out, feeds), await runOrt(TAGGER, feeds));
  });

  it('--at, λ checks and warnings', async () => {
    const out = path.join(dir, 'p.onnx');
    const neg = await cli(['patch', TAGGER, '--head', 'pos', '--lambda', '-0.5', '-o', out]);
    expect(neg.code).toBe(0);
    expect(neg.stderr).toContain("grl-onnx: warning: head 'pos': λ=-0.5 is negative, so the trunk gets this head's ordinary (not reversed) gradient\n");
    expect(grlLambdas(out)).toEqual([['pos/grl', -0.5]]);
    const inf = await cli(['patch', TAGGER, '--head', 'pos:inf', '-o', out]);
    expect([inf.code, inf.stderr]).toEqual([1, "grl-onnx: --head pos:inf: λ must be a finite number, got 'inf'\n"]);
    const nan = await cli(['patch', TAGGER, '--head', 'pos', '--lambda', 'abc', '-o', out]);
    expect([nan.code, nan.stderr]).toEqual([1, 'grl-onnx: --lambda must be a finite number\n']);
    const trunk = await cli(['patch', TAGGER, '--head', 'pos', '--at', '/encoder/layer.0/ffn_norm/Add_1_output_0', '-o', path.join(dir, 'at.onnx')]);
    expect(trunk.code).toBe(1);
    expect(trunk.stderr).toMatch(/^grl-onnx: .*tagger-opset14\.onnx: head 'pos': tensor '\/encoder\/layer\.0\/ffn_norm\/Add_1_output_0' is in the shared trunk .*\n$/);
    expect(fs.existsSync(path.join(dir, 'at.onnx'))).toBe(false);
  });

  it('an unknown head is one line listing the heads, and nothing is written', async () => {
    const out = path.join(dir, 'p.onnx');
    const r = await cli(['patch', TAGGER, '--head', 'sentiment', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`grl-onnx: ${TAGGER}: no head 'sentiment'; available heads: pos (pos_logits), ner (ner_logits)\n`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it.each([
    ['empty.onnx', Buffer.alloc(0), 'empty file, not an ONNX model'],
    ['model.json', Buffer.from('{"ir_version": 8}'), 'looks like JSON, not an ONNX model (a binary protobuf file)'],
    ['truncated.onnx', fs.readFileSync(TAGGER).subarray(0, 5000), 'not a valid ONNX model: truncated: field model.graph wants'],
    ['random.onnx', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % 251)), 'not a valid ONNX model'],
  ])('bad input %s: one line, non-zero exit, nothing written', async (name, bytes, message) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    for (const cmd of [['patch', f, '--head', 'pos', '-o', path.join(dir, 'out.onnx')], ['inspect', f]]) {
      const r = await cli(cmd);
      expect(r.code).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(r.stderr.startsWith(`grl-onnx: ${f}: ${message}`)).toBe(true);
      expect(r.stderr.split('\n')).toHaveLength(2);
    }
    expect(fs.readdirSync(dir)).toEqual([name]);
  });

  it('usage errors exit 2 with a pointer to --help', async () => {
    expect(await cli(['patch'])).toEqual({ code: 2, stdout: Buffer.alloc(0), stderr: "grl-onnx: Not enough non-option arguments: got 0, need at least 1 (see 'grl-onnx patch --help')\n" });
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli([])).stderr).toBe("grl-onnx: give a command (see 'grl-onnx --help')\n");
    const unknownOpt = await cli(['patch', TAGGER, '--head', 'pos', '--bogus']);
    expect([unknownOpt.code, unknownOpt.stderr]).toEqual([2, "grl-onnx: Unknown argument: bogus (see 'grl-onnx patch --help')\n"]);
    const noHead = await cli(['patch', TAGGER, '-o', path.join(dir, 'x.onnx')]);
    expect([noHead.code, noHead.stderr]).toEqual([1, `grl-onnx: ${TAGGER}: give at least one --head NAME (or --remove)\n`]);
  });

  it('unexpected errors are one line without --debug, with a stack trace with --debug', async () => {
    const boom = () => {
      throw new TypeError('boom');
    };
    const r = await cli(['inspect', '-'], { stdin: boom });
    expect([r.code, r.stderr]).toEqual([1, 'grl-onnx: unexpected error: boom (rerun with --debug for the stack trace)\n']);
    const d = await cli(['inspect', '-', '--debug'], { stdin: boom });
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/^grl-onnx: unexpected error: boom\nTypeError: boom\n\s+at /);
    const g = await cli(['patch', TAGGER, '--head', 'nope', '-o', path.join(dir, 'x.onnx'), '--debug']);
    expect(g.stderr).toMatch(/^grl-onnx: .*no head 'nope'.*\nGrlError: .*\n\s+at /);
  });

  it('inspect --json is one JSON document equal to the library report', async () => {
    const r = await cli(['inspect', TAGGER, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toEqual(JSON.parse(JSON.stringify(inspectModel(loadModel(TAGGER)))));
    const text = await cli(['inspect', TAGGER]);
    expect(text.stdout.toString()).toContain("    pos -> pos_logits: 12 exclusive nodes, leaves the trunk at '/encoder/layer.1/ffn_norm/Add_1_output_0'\n");
  });
});

describe('the built binary', () => {
  beforeAll(() => ensureBuilt(), 180000);

  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { cwd: dir, encoding: 'buffer' });

  it('--help', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('grl-onnx patch <model>');
    expect(r.stderr).toBe('');
  });

  it('cat m.onnx | grl-onnx patch - --head pos > p.onnx', async () => {
    const r = sh(`cat '${TAGGER}' | '${process.execPath}' '${BIN}' patch - --head pos:0.5 > p.onnx`);
    expect(r.status).toBe(0);
    expect(r.stderr.toString()).toBe(`pos (pos_logits): added GRL 'pos/grl' λ=0.5 at '${SPLICE}'\n`);
    const p = path.join(dir, 'p.onnx');
    expect(grlLambdas(p)).toEqual([['pos/grl', 0.5]]);
    const feeds = feedsFor(loadModel(TAGGER).proto);
    expectSameOutputs(await runOrt(p, feeds), await runOrt(TAGGER, feeds));
    // And as a pipeline step into inspect.
    const i = sh(`'${process.execPath}' '${BIN}' patch p.onnx --head ner -o - | '${process.execPath}' '${BIN}' inspect - --json`);
    expect(i.status).toBe(0);
    expect(JSON.parse(i.stdout.toString()).grls.map((g: { node: string }) => g.node).sort()).toEqual(['ner/grl', 'pos/grl']);
  });

  it('a bad input is one line on stderr, exit 1, no stack trace, nothing written', () => {
    fs.writeFileSync(path.join(dir, 'bad.onnx'), 'not a model at all');
    const r = sh(`'${process.execPath}' '${BIN}' patch bad.onnx --head pos -o out.onnx`);
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toMatch(/^grl-onnx: bad\.onnx: not a valid ONNX model: [^\n]*\n$/);
    expect(fs.readdirSync(dir)).toEqual(['bad.onnx']);
  });
});
