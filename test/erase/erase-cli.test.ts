// `grl-onnx erase` in-process on the shipped tiny tagger: each method end to end
// (JSON and human output, the model written and inspectable), and every bad input
// as one line with a non-zero exit.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../src/cli/main';
import { loadModel } from '../../src/onnx/io';
import { readErasers } from '../../src/erase/records';

const ROOT = path.join(__dirname, '../..');
const MODEL = path.join(ROOT, 'models/tiny-tagger.onnx');
const T = '/encoder/layer.1/ffn_norm/LayerNormalization_output_0';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } } };
}

describe('grl-onnx erase', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-erase-cli-'));
  const data = path.join(dir, 'fit.jsonl');
  const lines = fs.readFileSync(path.join(ROOT, 'data/dev.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 120);
  const p = (f: string) => path.join(dir, f);
  const cli = async (args: string[]) => {
    const a = io();
    const code = await runCli(['erase', MODEL, '--data', data, '--threads', '1', ...args], a.io);
    return { code, out: a.out.join(''), err: a.err.join('') };
  };
  beforeAll(() => {
    fs.writeFileSync(data, lines.join('\n'));
    // ner is all 'O' in these lines once we force it: a label with one class.
    fs.writeFileSync(p('one-class.jsonl'), lines.map((l) => JSON.stringify({ ...JSON.parse(l), ner: JSON.parse(l).ner.map(() => 0) })).join('\n'));
    fs.writeFileSync(p('tiny.jsonl'), lines.filter((l) => JSON.parse(l).input_ids.length <= 6).slice(0, 1).join('\n'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('leace --json: the record, the model written, inspect shows the eraser', async () => {
    const r = await cli(['--label', 'pos', '--method', 'leace', '--json', '-o', p('leace.onnx')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.eraser).toMatchObject({ method: 'leace', tensor: T, output: T, nodes: ['erase/leace/MatMul', 'erase/leace/Add'], dim: 128 });
    expect(j.eraser.rank).toBeLessThanOrEqual(16);
    expect(j.eraser.fit).toMatchObject({ label: 'pos', data, classes: 17, seed: 0 });
    expect(readErasers(loadModel(p('leace.onnx')).proto)).toEqual([j.eraser]);
    const a = io();
    expect(await runCli(['inspect', p('leace.onnx')], a.io)).toBe(0);
    expect(a.out.join('')).toContain(`  eraser: leace at '${T}', rank ${j.eraser.rank} of 128 (label pos, fit on ${data}, ${j.eraser.fit.rows} rows); nodes erase/leace/MatMul, erase/leace/Add`);
  });

  test('erasing again at the same tensor needs --replace', async () => {
    const a = io();
    const code = await runCli(['erase', p('leace.onnx'), '--data', data, '--label', 'pos', '--method', 'random', '--rank', '3', '-o', p('again.onnx')], a.io);
    expect(code).toBe(1);
    expect(a.err.join('')).toBe(`grl-onnx: ${p('leace.onnx')}: tensor '${T}' already has a leace eraser (fit on label 'pos'); pass --replace to fit a new one in its place\n`);
    const b = io();
    expect(await runCli(['erase', p('leace.onnx'), '--data', data, '--label', 'pos', '--method', 'random', '--rank', '3', '--replace', '-o', p('again.onnx')], b.io)).toBe(0);
    expect(b.out.join('')).toContain('(replaced a leace eraser)');
    expect(readErasers(loadModel(p('again.onnx')).proto).map((e) => [e.method, e.rank])).toEqual([['random', 3]]);
  });

  test('inlp: per-iteration accuracy against majority, stops at majority', async () => {
    const r = await cli(['--label', 'pos', '--method', 'inlp', '--iterations', '12', '-o', p('inlp.onnx')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^inlp eraser for 'pos' at ${T.replace(/[./]/g, '\\$&')} \\(dim 128, \\d+ rows, 17 classes\\)\n  removed rank (\\d+); nodes erase/inlp/MatMul\n  INLP: \\d+ classifiers?, stopped: majority`));
    const its = r.out.split('\n').filter((l) => /^\s+\d+\s+accuracy/.test(l));
    expect(its.length).toBeGreaterThan(1);
    expect(its[its.length - 1]).toMatch(/\+0 → rank \d+$/);
  });

  test('random without --rank takes INLP\'s rank and says so', async () => {
    const r = await cli(['--label', 'pos', '--method', 'random', '--iterations', '12', '--json', '-o', p('random.onnx')]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.eraser.fit.rankFrom).toBe('inlp');
    const its = j.eraser.fit.inlp.iterations;
    expect(j.eraser.rank).toBe(its[its.length - 1].rank);
  });

  test.each([
    ['a label with one class', ['--label', 'ner', '--method', 'leace'], 'one-class.jsonl', /the label has one class \(every row is class 0\); there is nothing to erase$/],
    ['too few examples', ['--label', 'pos', '--method', 'leace'], 'tiny.jsonl', /too few examples: \d labelled rows?, need at least 10$/],
    ['a tensor of the wrong rank', ['--label', 'pos', '--method', 'leace', '--at', '/encoder/layer.0/attention/Softmax_output_0'], '', /has rank 4; an eraser needs \[rows, dim\] or \[batch, seq, dim\]$/],
    ['an unknown tensor', ['--label', 'pos', '--method', 'leace', '--at', 'nope'], '', /tiny-tagger\.onnx: no tensor 'nope' in the graph$/],
    ['an unknown label', ['--label', 'sentiment', '--method', 'leace'], '', /fit\.jsonl:1: missing label key 'sentiment'$/],
    ['--rank with leace', ['--label', 'pos', '--method', 'leace', '--rank', '4'], '', /--rank applies to --method random \(leace finds its own rank\)$/],
    ['a bad --iterations', ['--label', 'pos', '--method', 'inlp', '--iterations', '0'], '', /--iterations must be a positive integer, got 0$/],
  ])('%s: one line, exit 1', async (_what, args, file, message) => {
    const a = io();
    const argv = ['erase', MODEL, '--data', file ? p(file) : data, ...args, '-o', p('bad.onnx')];
    const code = await runCli(argv, a.io);
    expect(code).toBe(1);
    const err = a.err.join('');
    expect(err.split('\n').filter(Boolean)).toHaveLength(1);
    expect(err.trim()).toMatch(message);
    expect(fs.existsSync(p('bad.onnx'))).toBe(false);
  });

  test('a corpus through a tokenizer on an encoder export: --tokenizer, --label NAME=COLUMN, last_hidden_state', async () => {
    const words = p('words.jsonl');
    fs.writeFileSync(words, fs.readFileSync(path.join(ROOT, 'data/words/dev.jsonl'), 'utf8').split('\n').slice(0, 80).join('\n'));
    const a = io();
    const code = await runCli(['erase', path.join(ROOT, 'models/encoders/bert-encoder.onnx'), '--data', words, '--tokenizer', path.join(ROOT, 'models/bert-base-uncased-tokenizer.json'),
      '--label', 'pos=pos', '--method', 'leace', '--json', '-o', p('bert-erased.onnx')], a.io);
    expect(a.err.join('')).toBe('');
    expect(code).toBe(0);
    const j = JSON.parse(a.out.join(''));
    expect(j.eraser).toMatchObject({ method: 'leace', tensor: 'last_hidden_state', input: 'last_hidden_state/before_erase', dim: 32, fit: { label: 'pos', data: words } });
    expect(j.eraser.fit.classes).toBeGreaterThan(5);
    expect(j.eraser.rank).toBe(j.eraser.fit.classes - 1);
  });

  test('corpus options without --tokenizer are one line', async () => {
    const r = await cli(['--label', 'pos', '--method', 'leace', '--format', 'conllu', '-o', p('bad.onnx')]);
    expect(r.code).toBe(1);
    expect(r.err).toBe('grl-onnx: --format needs --tokenizer (the data is read as a corpus only with a tokenizer)\n');
  });

  test('refuses to overwrite the input model', async () => {
    const copy = p('copy.onnx');
    fs.copyFileSync(MODEL, copy);
    const a = io();
    expect(await runCli(['erase', copy, '--data', data, '--label', 'pos', '--method', 'leace', '-o', copy], a.io)).toBe(1);
    expect(a.err.join('')).toContain('refusing to overwrite the input model (write the result to another file with -o)');
  });
});
