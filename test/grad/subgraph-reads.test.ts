// Names read inside If/Loop bodies (nodeReads in src/onnx/graph.ts) count as uses everywhere
// the graph is pruned, ordered or split: patch refuses to splice a GRL where the head reads the
// tensor only inside a subgraph, probe keeps the initializers a kept body reads, a trunk weight
// read inside an If is not the head's own, and a parameter that reaches the loss only through
// an If asks for If's gradient rule instead of being frozen silently. Also: topoOrder on an
// unsorted graph where one node reads two outputs of another, and a label input whose name is taken.
import * as ort from 'onnxruntime-node';
import { patchModel } from '../../src/patch/patch';
import { modelWithOutput } from '../../src/probe/features';
import { headParameters } from '../../src/experiment/models';
import { Graph, nodeReads } from '../../src/onnx/graph';
import { missingRules, topoOrder } from '../../src/grad/backward';
import { buildTrainingGraph } from '../../src/grad/training';
import { batchFeeds, dataSpecFor } from '../../src/train/trainer';
import { serializeModel } from '../../src/onnx/io';
import { GraphProto, NodeProto, TensorProto } from '../../src/onnx/proto';
import { float32Tensor } from '../../src/onnx/tensor';
import { makeModel, valueInfo, F, I64, BOOL } from '../helpers/build';
import { modelFromProto } from '../helpers/models';

const node = (name: string, op: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ name, op_type: op, input, output, attribute });
const cond: TensorProto = { name: 'cond', data_type: BOOL, dims: [], int32_data: [1] };
const w = (name: string, dims: number[]) => float32Tensor(name, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => 0.1 * (i + 1)));
const branch = (b: string, reads: string, weight: string): GraphProto => ({ name: b, node: [node(`${b}/mm`, 'MatMul', [reads, weight], [`${b}_out`])], input: [], output: [valueInfo(`${b}_out`, F)], initializer: [] });
const ifNode = (name: string, reads: string, weight: string, out: string) =>
  node(name, 'If', ['cond'], [out], [{ name: 'then_branch', type: 5, g: branch('then', reads, weight) }, { name: 'else_branch', type: 5, g: branch('else', reads, weight) }]);

/** trunk t = Relu(x W0); head a = If(cond){ t Wa } Wc (reads t only inside the If); head b = t Wb. */
function ifModel(outA = 'a_logits', outB = 'b_logits') {
  const proto = makeModel({
    nodes: [
      node('/trunk/mm', 'MatMul', ['x', 'W0'], ['h']), node('/trunk/relu', 'Relu', ['h'], ['t']),
      ifNode('/a/if', 't', 'Wa', 'ifout'),
      node('/a/mm', 'MatMul', ['ifout', 'Wc'], [outA]),
      node('/b/mm', 'MatMul', ['t', 'Wb'], [outB]),
    ],
    inputs: [valueInfo('x', F, [2, 3])],
    outputs: [valueInfo(outA, F, [2, 2]), valueInfo(outB, F, [2, 2])],
    initializers: [w('W0', [3, 3]), w('Wa', [3, 3]), w('Wc', [3, 2]), w('Wb', [3, 2]), cond],
  });
  proto.graph!.value_info = [valueInfo('ifout', F, [2, 3])];
  return modelFromProto(proto);
}

describe('reads inside subgraphs', () => {
  it('nodeReads: outer names of nested bodies, not the names a body defines, its inputs or its (sparse) initializers', () => {
    const inner: GraphProto = { name: 'inner', node: [node('in/add', 'Add', ['lv', 'outerX'], ['io']), node('in/mul', 'Mul', ['io', 'k'], ['io2'])], input: [], output: [valueInfo('io2', F)], initializer: [] };
    const body: GraphProto = {
      name: 'body',
      node: [node('b/id', 'Identity', ['v'], ['lv']), node('b/if', 'If', ['c'], ['bo'], [{ name: 'then_branch', type: 5, g: inner }, { name: 'else_branch', type: 5, g: inner }])],
      input: [valueInfo('i', 7, []), valueInfo('c', BOOL, []), valueInfo('v', F)],
      output: [valueInfo('c', BOOL), valueInfo('bo', F)],
      initializer: [w('k', [1])],
    };
    expect(nodeReads(node('loop', 'Loop', ['M', '', 'v0'], ['vf'], [{ name: 'body', type: 5, g: body }]))).toEqual(['M', '', 'v0', 'outerX']);
    const sparse: GraphProto = {
      name: 's', node: [node('s/add', 'Add', ['z', 'sp'], ['so'])], input: [], output: [valueInfo('so', F)], initializer: [],
      sparse_initializer: [{ values: { name: 'sp', data_type: F, dims: [1], float_data: [1] }, indices: { name: 'spi', data_type: 7, dims: [1], int64_data: [0] }, dims: [1] }],
    };
    expect(nodeReads(node('if', 'If', ['c'], ['o'], [{ name: 'then_branch', type: 5, g: sparse }]))).toEqual(['c', 'z']);
  });

  it('patch refuses to splice a GRL where the head reads the tensor only inside an If (it used to report a dead GRL as added)', () => {
    expect(() => patchModel(ifModel(), { heads: [{ name: 'a' }], at: 't' })).toThrow("'t' is read inside a subgraph of node /a/if (If); a GRL cannot be spliced there");
  });

  it('... and where a head node takes the tensor as an input and also reads it inside its body (a Loop)', () => {
    const body: GraphProto = {
      name: 'body',
      node: [node('b/add', 'Add', ['v', 't'], ['vo']), node('b/c', 'Identity', ['c'], ['co'])],
      input: [valueInfo('i', I64, []), valueInfo('c', BOOL, []), valueInfo('v', F, [2, 3])],
      output: [valueInfo('co', BOOL, []), valueInfo('vo', F, [2, 3])],
      initializer: [],
    };
    const proto = makeModel({
      nodes: [
        node('/trunk/mm', 'MatMul', ['x', 'W0'], ['t']),
        node('/a/loop', 'Loop', ['M', '', 't'], ['lo'], [{ name: 'body', type: 5, g: body }]),
        node('/a/mm', 'MatMul', ['lo', 'Wa'], ['a_logits']),
        node('/b/mm', 'MatMul', ['t', 'Wb'], ['b_logits']),
      ],
      inputs: [valueInfo('x', F, [2, 3])],
      outputs: [valueInfo('a_logits', F, [2, 2]), valueInfo('b_logits', F, [2, 2])],
      initializers: [w('W0', [3, 3]), w('Wa', [3, 2]), w('Wb', [3, 2]), { name: 'M', data_type: I64, dims: [], int64_data: [2] }],
    });
    expect(() => patchModel(modelFromProto(proto), { heads: [{ name: 'a' }], at: 't' })).toThrow("'t' is read inside a subgraph of node /a/loop (Loop); a GRL cannot be spliced there");
  });

  it('probe keeps the initializers a kept If body reads, so onnxruntime loads the cut model', async () => {
    const cut = modelWithOutput(ifModel(), 'ifout');
    expect((cut.graph!.initializer ?? []).map((t) => t.name).sort()).toEqual(['W0', 'Wa', 'cond']);
    const s = await ort.InferenceSession.create(serializeModel(cut));
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from({ length: 6 }, (_, i) => i), [2, 3]) });
    expect(r.ifout.dims).toEqual([2, 3]);
    await s.release();
  });

  it('a weight the trunk reads inside an If is not the head\'s own', () => {
    const proto = makeModel({
      nodes: [ifNode('/trunk/if', 'x', 'W', 't'), node('/trunk/relu', 'Relu', ['t'], ['u']), node('/a/mm', 'MatMul', ['u', 'W'], ['a_logits']), node('/a/mm2', 'MatMul', ['a_logits', 'Wa'], ['a2_logits']), node('/b/mm', 'MatMul', ['u', 'Wb'], ['b_logits'])],
      inputs: [valueInfo('x', F, [2, 3])],
      outputs: [valueInfo('a2_logits', F, [2, 2]), valueInfo('b_logits', F, [2, 2])],
      initializers: [w('W', [3, 3]), w('Wa', [3, 2]), w('Wb', [3, 2]), cond],
    });
    expect(headParameters(modelFromProto(proto), 'a2_logits')).toEqual(['Wa']);
  });

  it('a parameter reaching the loss only through an If asks for If\'s rule (inspect lists it) instead of being frozen', () => {
    const m = ifModel();
    expect(missingRules(new Graph(m.proto.graph!), { targets: ['a_logits'] })).toEqual([{ op: 'If', domain: '', nodes: ['/a/if'] }]);
    expect(() => buildTrainingGraph(m, { losses: [{ head: 'a', kind: 'mse' }] })).toThrow("no gradient rule for op If (node '/a/if', opset 17)");
  });
});

describe('graph order and names', () => {
  it('topoOrder sorts an unsorted graph where one node reads two outputs of another', () => {
    const g = new Graph({ name: 'g', node: [node('add', 'Add', ['a', 'b'], ['c']), node('split', 'Split', ['x'], ['a', 'b'])], input: [valueInfo('x', F, [4])], output: [valueInfo('c', F)] });
    expect(topoOrder(g).map((n) => n.name)).toEqual(['split', 'add']);
  });

  it('a head named after an output without a _logits affix gets the label input <head>.labels (its name is taken by the output)', async () => {
    const tg = buildTrainingGraph(ifModel('out_a', 'out_b'), { losses: [{ head: 'out_b', kind: 'mse' }] });
    expect(tg.heads.map((h) => [h.head, h.labelInput, h.output])).toEqual([['out_b', 'out_b.labels', 'out_b']]);
    const inputs = (tg.training.graph!.input ?? []).map((i) => i.name);
    expect(inputs).toContain('out_b.labels');
    const s = await ort.InferenceSession.create(serializeModel(tg.training));
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', Float32Array.from({ length: 6 }, (_, i) => i / 6), [2, 3]),
      'out_b.labels': new ort.Tensor('float32', Float32Array.of(1, 0, 0, 1), [2, 2]),
    };
    for (const p of tg.params.filter((q) => q.trainable)) feeds[p.name] = new ort.Tensor('float32', Float32Array.from({ length: p.dims.reduce((a, b) => a * b, 1) }, (_, i) => 0.1 * (i + 1)), p.dims);
    const r = await s.run(feeds);
    expect(Number.isFinite((r[tg.outputs.loss].data as Float32Array)[0])).toBe(true);
    await s.release();
    // The trainer still reads the labels under the head's name and feeds them to that input.
    const heads = [{ head: 'out_b', labelInput: 'out_b.labels', output: 'out_b', kind: 'ce' as const, weight: 1, tokenLevel: true, numClasses: 3 }];
    const spec = dataSpecFor({ modelInputs: [], heads }, {});
    expect(spec.labels.map((l) => l.key)).toEqual(['out_b']);
    const fed = batchFeeds({ size: 1, seqLen: 2, inputs: {}, labels: { out_b: BigInt64Array.of(1n, 2n) }, lines: [1] }, spec, heads);
    expect(Object.keys(fed)).toEqual(['out_b.labels']);
    expect(fed['out_b.labels'].dims).toEqual([1, 2]);
  });
});
