// Static shape inference per op (src/onnx/shapes/): for each small graph, the
// exact shapes inferred, checked against what onnxruntime-node produces with
// batch = 3 and sequence = 5 (a symbolic dim must mean the same size everywhere).
import * as ort from 'onnxruntime-node';
import { NodeProto, TensorProto, ValueInfoProto } from '../../src/onnx/proto';
import { makeTensor } from '../../src/onnx/tensor';
import { Dim, einsumShape, inferShapes } from '../../src/onnx/shapes';
import { serializeModel } from '../../src/onnx/io';
import { BOOL, F, I64, makeModel, randn, rng, valueInfo } from '../helpers/build';

const SIZES: Record<string, number> = { batch: 3, sequence: 5 };
const i64 = (name: string, vals: number[], dims = [vals.length]) => makeTensor(name, I64, dims, BigInt64Array.from(vals, BigInt));
const attr = (name: string, v: number | number[] | string) =>
  typeof v === 'string' ? { name, type: 3, s: new TextEncoder().encode(v) } : Array.isArray(v) ? { name, type: 7, ints: v } : { name, type: 2, i: v };
const node = (op: string, input: string[], output: string[], attribute: ReturnType<typeof attr>[] = []): NodeProto => ({ name: output[0], op_type: op, input, output, attribute });

/** Infer, then run in ORT with every node output exposed, and check each claimed dim. */
async function inferAndCheck(nodes: NodeProto[], inputs: ValueInfoProto[], inits: TensorProto[] = []): Promise<Record<string, Dim[] | undefined>> {
  const proto = makeModel({ nodes, inputs, outputs: [], initializers: inits });
  const shapes = inferShapes(proto.graph!);
  const names = nodes.flatMap((n) => n.output ?? []);
  proto.graph!.output = names.map((name) => ({ name }));
  const s = await ort.InferenceSession.create(serializeModel(proto), { graphOptimizationLevel: 'disabled' });
  const feeds: Record<string, ort.Tensor> = {};
  const rand = rng(9);
  for (const vi of inputs) {
    const dims = (vi.type!.tensor_type!.shape!.dim ?? []).map((d) => (d.dim_param ? SIZES[d.dim_param] : Number(d.dim_value)));
    const n = dims.reduce((a, b) => a * b, 1);
    const et = vi.type!.tensor_type!.elem_type;
    feeds[vi.name!] = et === I64 ? new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, k) => BigInt(k % 3)), dims)
      : et === BOOL ? new ort.Tensor('bool', Uint8Array.from({ length: n }, (_, k) => k % 2), dims)
        : new ort.Tensor('float32', randn(rand, n), dims);
  }
  const out = await s.run(feeds);
  await s.release();
  const result: Record<string, Dim[] | undefined> = {};
  for (const name of names) {
    const claimed = shapes.shape(name);
    result[name] = claimed;
    if (!claimed) continue;
    const actual = out[name].dims;
    expect([name, claimed.length]).toEqual([name, actual.length]);
    claimed.forEach((d, k) => {
      if (d !== null) expect([name, k, typeof d === 'number' ? d : SIZES[d]]).toEqual([name, k, actual[k]]);
    });
  }
  return result;
}

const x = valueInfo('x', F, ['batch', 'sequence', 4]);
const ids = valueInfo('ids', I64, ['batch', 'sequence']);

describe('static shape rules, checked against onnxruntime', () => {
  it('elementwise: CumSum, Not, Where, Neg, Sin, Cos, Pow, Mod, Softmax, Trilu keep or broadcast shapes', async () => {
    const r = await inferAndCheck([
      node('CumSum', ['ids', 'one'], ['cum']),
      node('Equal', ['ids', 'zero'], ['is_pad']),
      node('Not', ['is_pad'], ['real']),
      node('Unsqueeze', ['real', 'last'], ['real3']),
      node('Where', ['real3', 'x', 'minus'], ['masked']),
      node('Neg', ['masked'], ['neg']),
      node('Sin', ['neg'], ['sin']),
      node('Cos', ['neg'], ['cos']),
      node('Pow', ['cos', 'two'], ['pow']),
      node('Mod', ['cum', 'three'], ['mod']),
      node('Softmax', ['pow'], ['soft'], [attr('axis', -1)]),
      node('Trilu', ['soft'], ['tri']),
    ], [x, ids], [i64('one', [1], []), i64('zero', [0], []), i64('last', [-1]), makeTensor('minus', F, [], Float32Array.of(-1)), makeTensor('two', F, [], Float32Array.of(2)), i64('three', [3], [])]);
    expect(r).toEqual({
      cum: ['batch', 'sequence'], is_pad: ['batch', 'sequence'], real: ['batch', 'sequence'], real3: ['batch', 'sequence', 1],
      masked: ['batch', 'sequence', 4], neg: ['batch', 'sequence', 4], sin: ['batch', 'sequence', 4], cos: ['batch', 'sequence', 4],
      pow: ['batch', 'sequence', 4], mod: ['batch', 'sequence'], soft: ['batch', 'sequence', 4], tri: ['batch', 'sequence', 4],
    });
  });

  it("torch's expand (Where(Equal(target, -1), 1, target)), Range and ConstantOfShape of computed sizes", async () => {
    const r = await inferAndCheck([
      node('Shape', ['x'], ['shape']),
      node('Gather', ['shape', 'i0'], ['b']),
      node('Gather', ['shape', 'i1'], ['t']),
      node('Unsqueeze', ['b', 'ax0'], ['b1']),
      node('Unsqueeze', ['t', 'ax0'], ['t1']),
      node('Concat', ['b1', 'two', 't1', 'four'], ['target'], [attr('axis', 0)]),
      node('Reshape', ['target', 'flat'], ['target1']),
      node('Shape', ['target1'], ['tshape']),
      node('ConstantOfShape', ['tshape'], ['ones'], [{ name: 'value', type: 4, t: i64('v', [1]) }]),
      node('Mul', ['ones', 'minus1'], ['minus']),
      node('Equal', ['target1', 'minus'], ['is_minus']),
      node('Where', ['is_minus', 'ones', 'target1'], ['safe']),
      node('Expand', ['x', 'safe'], ['expanded']),
      node('Range', ['zero', 't', 'one'], ['positions']),
      node('ConstantOfShape', ['shape'], ['zeros']),
    ], [valueInfo('x', F, ['batch', 1, 'sequence', 4])], [
      i64('i0', [0], []), i64('i1', [2], []), i64('ax0', [0]), i64('two', [2]), i64('four', [4]), i64('flat', [-1]), i64('minus1', [-1], []),
      i64('zero', [0], []), i64('one', [1], []),
    ]);
    expect(r.expanded).toEqual(['batch', 2, 'sequence', 4]);
    expect(r.positions).toEqual(['sequence']);
    expect(r.zeros).toEqual(['batch', 1, 'sequence', 4]);
  });

  it('computed shapes and axes of static length keep the rank: Expand, Reshape, ConstantOfShape, Squeeze, Unsqueeze, reductions', async () => {
    // The target is data (a model input), so only its length is static.
    const r = await inferAndCheck([
      node('Abs', ['target'], ['t_abs']),
      node('Add', ['t_abs', 'one'], ['t_pos']),
      node('Expand', ['onef', 't_pos'], ['expanded']),
      node('ConstantOfShape', ['t_pos'], ['filled']),
      node('Reshape', ['x', 'shape3'], ['reshaped']),
      node('ReduceSum', ['x', 'axes1'], ['sum_keep']),
      node('ReduceSum', ['x', 'axes1'], ['sum_drop'], [attr('keepdims', 0)]),
      node('ReduceSum', ['x', 'const_axes'], ['sum_const'], [attr('keepdims', 0)]),
      node('ReduceMean', ['x'], ['mean_attr'], [attr('axes', [1]), attr('keepdims', 0)]),
      node('Unsqueeze', ['x', 'axes1'], ['unsq']),
      node('Squeeze', ['unsq', 'axes1'], ['sq']),
    ], [x, valueInfo('target', I64, [3]), valueInfo('axes1', I64, [1])], [i64('one', [1], []), makeTensor('onef', F, [], Float32Array.of(1)), i64('shape3', [0, 0, 4]), i64('const_axes', [-1])]);
    // Values of the data inputs here: target = [0, 1, 2] -> [1, 2, 3]; axes1 = [0].
    expect(r).toEqual({
      t_abs: [3], t_pos: [3], expanded: [null, null, null], filled: [null, null, null], reshaped: ['batch', 'sequence', 4],
      sum_keep: [null, null, null], sum_drop: [null, null], sum_const: ['batch', 'sequence'], mean_attr: ['batch', 4], unsq: [null, null, null, null], sq: [null, null, null],
    });
  });

  it('Einsum from its equation, explicit, implicit and with an ellipsis', async () => {
    const r = await inferAndCheck([
      node('Einsum', ['q', 'k'], ['scores'], [attr('equation', 'bhqd,bhkd->bhqk')]),
      node('Einsum', ['a', 'w'], ['proj'], [attr('equation', '...d,de->...e')]),
      node('Einsum', ['w', 'w2'], ['implicit'], [attr('equation', 'de,ef')]),
    ], [valueInfo('q', F, ['batch', 2, 'sequence', 4]), valueInfo('k', F, ['batch', 2, 'sequence', 4]), valueInfo('a', F, ['batch', 'sequence', 4]), valueInfo('w', F, [4, 6]), valueInfo('w2', F, [6, 3])]);
    expect(r).toEqual({ scores: ['batch', 2, 'sequence', 'sequence'], proj: ['batch', 'sequence', 6], implicit: [4, 3] });
    expect(einsumShape('ij,jk', [[2, 3], [3, 4]])).toEqual([2, 4]);
    expect(einsumShape('ij,jk->ik', [[2, 3], undefined])).toBeUndefined();
  });

  it('TopK, GatherND, OneHot, Tile with computed repeats, Flatten', async () => {
    const r = await inferAndCheck([
      node('TopK', ['x', 'k2'], ['top', 'top_idx']),
      node('GatherND', ['x', 'nd'], ['gathered']),
      node('OneHot', ['ids', 'depth', 'onoff'], ['onehot']),
      node('Tile', ['x', 'reps'], ['tiled']),
      node('Flatten', ['x'], ['flat'], [attr('axis', 2)]),
    ], [x, ids, valueInfo('reps', I64, [3])], [i64('k2', [2]), i64('nd', [0, 1, 1, 2], [2, 2]), i64('depth', [6], []), makeTensor('onoff', F, [2], Float32Array.of(0, 1))]);
    expect(r).toEqual({
      top: ['batch', 'sequence', 2], top_idx: ['batch', 'sequence', 2], gathered: [2, 4],
      onehot: ['batch', 'sequence', null], tiled: [null, null, null], flat: [null, 4],
    });
  });
});
