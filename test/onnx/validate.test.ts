// Checker-grade validation: each invalid-model class is refused by `patch` with one
// line naming the node or tensor (and nothing is written), `inspect` lists the
// findings, subgraphs see their outer scope, and grl-onnx's own outputs (patched
// models, training, eval and optimizer graphs, artifacts, trained models) pass.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../src/cli/main';
import { Model, loadModel, serializeModel } from '../../src/onnx/io';
import { ModelProto, NodeProto, TensorProto, AttrType } from '../../src/onnx/proto';
import { assertValidModel, findingText, validateModel } from '../../src/onnx/validate';
import { OP_SINCE } from '../../src/onnx/op-versions';
import { patchModel } from '../../src/patch/patch';
import { buildTrainingGraph } from '../../src/grad/training';
import { float32Tensor } from '../../src/onnx/tensor';
import { F, makeModel, valueInfo } from '../helpers/build';
import { modelFromProto } from '../helpers/models';
import { ROOT } from '../helpers/bin';

const MODELS = path.join(ROOT, 'models');
const TAGGER = path.join(MODELS, 'tagger-opset17.onnx');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-validate-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const init = (p: ModelProto, name: string) => (p.graph?.initializer ?? []).find((t) => t.name === name) as TensorProto;
const node = (p: ModelProto, pred: (n: NodeProto) => boolean) => (p.graph?.node ?? []).find(pred) as NodeProto;
const BIAS = 'pos.out.bias';

/** [what, mutation of the tagger, the finding it must produce (exact text or pattern)] */
const CASES: [string, (p: ModelProto) => void, string | RegExp][] = [
  ['raw data length does not match the dims', (p) => { init(p, BIAS).dims = [16]; }, `initializer '${BIAS}' has 68 bytes of raw data but its dims [16] of FLOAT need 64`],
  ['unknown data type', (p) => { init(p, BIAS).data_type = 99; }, `initializer '${BIAS}' has unknown data type 99`],
  ['a dimension of 2^40', (p) => { init(p, BIAS).dims = [2 ** 40]; }, `initializer '${BIAS}' has dimension 0 = 1099511627776, over 2^31`],
  ['a dimension of -1', (p) => { init(p, BIAS).dims = [-1]; }, `initializer '${BIAS}' has dimension 0 = -1; dims must be non-negative integers`],
  ['an unknown default-domain op', (p) => { node(p, (n) => n.op_type === 'Erf').op_type = 'Erff'; }, /^node '[^']+' \(Erff\) 'Erff' is not an operator of the default ONNX domain \(ai\.onnx\)$/],
  ['an op newer than the opset', (p) => { node(p, (n) => n.op_type === 'Erf').op_type = 'Gelu'; }, /^node '[^']+' \(Gelu\) Gelu exists since opset 20, but the model imports opset 17$/],
  ['an input nothing produces', (p) => { node(p, (n) => n.output?.[0] === 'pos_logits').input = ['nowhere', BIAS]; }, /^node '[^']+' \(Add\) input 'nowhere' is not produced by any node, initializer or graph input$/],
  ['a cycle', (p) => { node(p, (n) => n.op_type === 'Gather' && n.input?.[1] === 'input_ids').input = [node(p, (n) => n.op_type === 'Gather' && n.input?.[1] === 'input_ids').input?.[0] ?? '', 'pos_logits']; }, /^node '[^']+' \([A-Za-z]+\) is on a cycle \(it depends on its own output through \d+ nodes\)$/],
  ['nodes out of topological order (onnxruntime would sort them; patch blamed itself)', (p) => {
    const nodes = p.graph?.node ?? [];
    const k = nodes.findIndex((n) => n.output?.[0] === 'pos_logits');
    nodes.unshift(...nodes.splice(k, 1));
  }, /^node '[^']+' \(Add\) reads '[^']+', which a later node produces; the nodes must be in topological order$/],
  ['a tensor produced twice', (p) => { node(p, (n) => n.output?.[0] === 'ner_logits').output = ['pos_logits']; }, /^node '[^']+' \(Add\) output 'pos_logits' is also produced by node '[^']+' \(Add\)$/],
  ['a duplicate initializer', (p) => { p.graph?.initializer?.push({ ...init(p, BIAS) }); }, `initializer '${BIAS}' is defined twice`],
  ['an attribute of the wrong type', (p) => {
    const g = node(p, (n) => n.op_type === 'Gather' && n.input?.[1] === 'input_ids');
    g.attribute = [{ name: 'axis', type: AttrType.FLOAT, f: 0 }];
  }, /^node '[^']+' \(Gather\) attribute 'axis' is FLOAT, but Gather expects INT$/],
];

describe.each(CASES)('%s', (_what, mutate, expected) => {
  test('validateModel finds it; patch refuses with one line and writes nothing; inspect lists it', async () => {
    const m = loadModel(TAGGER);
    mutate(m.proto);
    const file = path.join(dir, 'bad.onnx');
    fs.writeFileSync(file, serializeModel(m));
    const findings = validateModel(loadModel(file)).map(findingText);
    expect(findings[0]).toMatch(typeof expected === 'string' ? new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : expected);

    const c = capture();
    const out = path.join(dir, 'out.onnx');
    expect(await runCli(['patch', file, '--head', 'pos', '-o', out], c.io)).toBe(1);
    const more = findings.length > 1 ? ` (and ${findings.length - 1} more problem${findings.length > 2 ? 's' : ''}: grl-onnx inspect lists them)` : '';
    expect(c.err.join('')).toBe(`grl-onnx: ${file}: invalid model: ${findings[0]}${more}\n`);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual(['bad.onnx']);

    const i = capture();
    expect(await runCli(['inspect', file], i.io)).toBe(0);
    expect(i.out.join('')).toContain(`problems (${findings.length}; patch, artifacts and train refuse this model):\n    - ${findings[0]}\n`);
  });
});

test('heads add, erase, artifacts and train refuse an invalid model before writing', async () => {
  const m = loadModel(TAGGER);
  init(m.proto, BIAS).data_type = 99;
  const file = path.join(dir, 'bad.onnx');
  fs.writeFileSync(file, serializeModel(m));
  fs.writeFileSync(path.join(dir, 'd.jsonl'), `${JSON.stringify({ input_ids: [5, 6], pos: [0, 1], ner: [0, 0] })}\n`);
  const line = `grl-onnx: ${file}: invalid model: initializer '${BIAS}' has unknown data type 99\n`;
  for (const args of [['heads', 'add', file, '--head', 'topic:4:seq', '-o', path.join(dir, 'h.onnx')], ['erase', file, '--data', path.join(dir, 'd.jsonl'), '--label', 'pos', '--method', 'leace', '-o', path.join(dir, 'e.onnx')], ['artifacts', file, '--loss', 'pos', '-o', path.join(dir, 'art')], ['train', file, '--data', path.join(dir, 'd.jsonl'), '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')]]) {
    const c = capture();
    expect(await runCli(args, c.io)).toBe(1);
    expect(c.err.join('')).toBe(line);
  }
  expect(fs.readdirSync(dir).sort()).toEqual(['bad.onnx', 'd.jsonl']);
});

describe('what is allowed', () => {
  test('a graph input may share its name with an initializer (IR < 4 style)', () => {
    const m = loadModel(TAGGER);
    m.proto.graph?.input?.push(valueInfo(BIAS, F, [17]));
    expect(validateModel(m)).toEqual([]);
  });

  const branch = (reads: string) => ({ name: 'then', node: [{ op_type: 'Identity', input: [reads], output: ['b'] }], output: [valueInfo('b', F, [2])] });
  const ifModel = (reads: string) => makeModel({
    nodes: [
      { op_type: 'Relu', input: ['x'], output: ['r'] },
      { op_type: 'If', name: 'if', input: ['c'], output: ['y'], attribute: [{ name: 'then_branch', type: AttrType.GRAPH, g: branch(reads) }, { name: 'else_branch', type: AttrType.GRAPH, g: branch('x') }] },
    ],
    inputs: [valueInfo('x', F, [2]), valueInfo('c', 9, [])], outputs: [valueInfo('y', F, [2])],
  });
  test('a subgraph reads outer-scope tensors (node outputs and graph inputs)', () => {
    expect(validateModel(modelFromProto(ifModel('r')))).toEqual([]);
  });
  test('a subgraph reading a name no scope defines is reported with where it is', () => {
    expect(validateModel(modelFromProto(ifModel('ghost'))).map(findingText)).toEqual(["in the then_branch of node 'if' (If): node 'Identity(b)' (Identity) input 'ghost' is not produced by any node, initializer or graph input"]);
  });
  test('a custom-domain op needs its domain imported', () => {
    const m = makeModel({ nodes: [{ op_type: 'Foo', domain: 'my.ops', input: ['x'], output: ['y'] }], inputs: [valueInfo('x', F, [2])], outputs: [valueInfo('y', F, [2])] });
    expect(validateModel(modelFromProto(m)).map(findingText)).toEqual(["node 'Foo(y)' (Foo) its domain 'my.ops' is not imported by the model (opset_import)"]);
    expect(validateModel(modelFromProto({ ...m, opset_import: [...(m.opset_import ?? []), { domain: 'my.ops', version: 1 }] }))).toEqual([]);
  });
  test('the op table knows every default-domain op grl-onnx emits or has rules for', () => {
    for (const op of ['Add', 'LayerNormalization', 'Gelu', 'Trilu', 'Gather', 'Range', 'CumSum', 'Swish']) expect(OP_SINCE[op]).toBeGreaterThan(0);
    expect([OP_SINCE.LayerNormalization, OP_SINCE.Gelu, OP_SINCE.Trilu, OP_SINCE.Range, OP_SINCE.Swish]).toEqual([17, 20, 14, 11, 24]);
  });
  test('assertValidModel: one line with the first finding', () => {
    const m = modelFromProto(makeModel({ nodes: [{ op_type: 'Add', name: 'a', input: ['x', 'w'], output: ['y'] }], inputs: [valueInfo('x', F, [2])], outputs: [valueInfo('y', F, [2])], initializers: [{ ...float32Tensor('w', [2], [1, 2]), dims: [3] }] }), 'm.onnx');
    expect(() => assertValidModel(m)).toThrow("m.onnx: invalid model: initializer 'w' has 8 bytes of raw data but its dims [3] of FLOAT need 12");
  });
});

describe("grl-onnx's own outputs pass the checker", () => {
  const fixtures = fs.readdirSync(MODELS).filter((f) => f.endsWith('.onnx'));

  test.each(['zoo', 'encoders'].flatMap((d) => fs.readdirSync(path.join(MODELS, d)).filter((f) => f.endsWith('.onnx')).map((f) => `${d}/${f}`)))('%s passes', (f) => {
    expect(validateModel(loadModel(path.join(MODELS, f))).map(findingText)).toEqual([]);
  });

  test('erase (LEACE on the tiny tagger): the output passes', async () => {
    const out = path.join(dir, 'erased.onnx');
    expect(await runCli(['erase', path.join(MODELS, 'tiny-tagger.onnx'), '--data', path.join(ROOT, 'data', 'dev.jsonl'), '--label', 'pos', '--method', 'leace', '--max-rows', '2000', '-o', out], capture().io)).toBe(0);
    expect(validateModel(loadModel(out)).map(findingText)).toEqual([]);
  });

  test('heads add on an encoder: the output passes', async () => {
    const out = path.join(dir, 'tagger.onnx');
    expect(await runCli(['heads', 'add', path.join(MODELS, 'encoders', 'bert-encoder.onnx'), '--head', 'pos:17', '--adversarial', 'pos:0.1', '--head', 'topic:4:seq', '-o', out], capture().io)).toBe(0);
    expect(validateModel(loadModel(out)).map(findingText)).toEqual([]);
  });
  const expectValid = (m: Model, what: string) => expect([what, validateModel(m).map(findingText)]).toEqual([what, []]);

  test.each(fixtures)('%s: the fixture, its patched model and its training/eval graphs', (f) => {
    const m = loadModel(path.join(MODELS, f));
    expectValid(m, f);
    const outputs = (m.proto.graph?.output ?? []).map((o) => o.name ?? '');
    const head = outputs.find((o) => o.endsWith('_logits'))?.replace(/_logits$/, '') ?? outputs[0];
    const patched = patchModel(m, { heads: [{ name: head, lambda: 0.5 }] }).model;
    expectValid(patched, `${f} patched`);
    expectValid(patchModel(patched, { heads: [], remove: true }).model, `${f} unpatched`);
    const tg = buildTrainingGraph(patched, { losses: [{ head, weight: 1 }], rowSparseGradients: true });
    expectValid({ ...patched, proto: tg.training }, `${f} training graph`);
    expectValid({ ...patched, proto: tg.eval }, `${f} eval graph`);
  });

  test('artifacts and a trained model', async () => {
    const art = path.join(dir, 'art');
    expect(await runCli(['artifacts', TAGGER, '--head', 'pos', '--loss', 'pos', '--loss', 'ner', '-o', art], capture().io)).toBe(0);
    for (const f of fs.readdirSync(art).filter((x) => x.endsWith('.onnx'))) expectValid(loadModel(path.join(art, f)), f);
    fs.writeFileSync(path.join(dir, 'd.jsonl'), `${JSON.stringify({ input_ids: [5, 6, 7], pos: [0, 1, 2], ner: [0, 0, 1] })}\n`);
    expect(await runCli(['train', TAGGER, '--head', 'pos', '--data', path.join(dir, 'd.jsonl'), '--loss', 'pos', '--loss', 'ner', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--json', '--out', path.join(dir, 'run')], capture().io)).toBe(0);
    expectValid(loadModel(path.join(dir, 'run', 'model.onnx')), 'trained model.onnx');
  });
});
