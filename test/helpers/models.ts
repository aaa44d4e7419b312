// Test helpers for I/O, patch, inspect and CLI tests: the committed fixture
// models, deterministic feeds for them, ORT runs from bytes or paths, a small
// hand-built multi-head model, and a bit-for-bit output comparison.
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ModelProto, NodeProto, toNumber } from '../../src/onnx/proto';
import { Model, loadModel, serializeModel } from '../../src/onnx/io';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor';
import { A, makeAttrs } from '../../src/onnx/attrs';
import { F, I64, makeModel, randn, rng, valueInfo } from './build';

export const MODELS_DIR = path.join(__dirname, '..', '..', 'models');

export function fixturePaths(): string[] {
  return fs.readdirSync(MODELS_DIR).filter((f) => f.endsWith('.onnx')).sort().map((f) => path.join(MODELS_DIR, f));
}

/** Feeds for a model's inputs: token ids in [0, 100), masks with a padded tail, float inputs from N(0, 1). */
export function feedsFor(proto: ModelProto, batch = 2, seq = 5, seed = 7): Record<string, ort.Tensor> {
  const rand = rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  const inits = new Set((proto.graph?.initializer ?? []).map((t) => t.name));
  for (const inp of proto.graph?.input ?? []) {
    if (inits.has(inp.name)) continue;
    const tt = inp.type?.tensor_type;
    const dims = (tt?.shape?.dim ?? []).map((d, i) => (toNumber(d.dim_value) || (i === 0 ? batch : seq)));
    const n = dims.reduce((a, b) => a * b, 1);
    const name = inp.name ?? '';
    if (tt?.elem_type === I64) {
      const vals = Array.from({ length: n }, (_, k) => {
        if (name.includes('mask')) return k % seq < seq - 1 || k < seq ? 1 : 0;
        if (name.includes('type')) return k % 2;
        return Math.floor(rand() * 100);
      });
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from(vals, (v) => BigInt(v)), dims);
    } else {
      feeds[name] = new ort.Tensor('float32', randn(rand, n), dims);
    }
  }
  return feeds;
}

export type Outputs = Record<string, Uint8Array>;

/** Run a model (bytes, or a path so external data resolves) and return each output's raw bytes. */
export async function runOrt(model: Uint8Array | string, feeds: Record<string, ort.Tensor>, level: 'disabled' | 'all' = 'all'): Promise<Outputs> {
  const s = typeof model === 'string'
    ? await ort.InferenceSession.create(model, { graphOptimizationLevel: level })
    : await ort.InferenceSession.create(model, { graphOptimizationLevel: level });
  try {
    const r = await s.run(feeds);
    const out: Outputs = {};
    for (const name of s.outputNames) {
      const d = r[name].data as Float32Array;
      out[name] = new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
    }
    return out;
  } finally {
    await s.release();
  }
}

/** The largest |a[i] - b[i]|, after checking the lengths agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Exact byte equality of every output (bit-identical floats, NaN payloads included). */
export function expectSameOutputs(actual: Outputs, expected: Outputs): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const k of Object.keys(expected)) {
    expect(actual[k].length).toBe(expected[k].length);
    expect(actual[k].length).toBeGreaterThan(0);
    expect(Buffer.compare(Buffer.from(actual[k]), Buffer.from(expected[k]))).toBe(0);
  }
}

export function modelFromProto(proto: ModelProto, source = '<test>'): Model {
  return loadModel(serializeModel(proto), { name: source });
}

/**
 * A small torch-like two-layer trunk with three heads, named after module scopes:
 *   x -> /encoder/layer.0 (MatMul, Add, Relu) -> /encoder/layer.1 (...) -> h
 *   h -> /heads.pos/{MatMul,Add} -> pos_logits
 *   h -> /heads.ner/MatMul -> logits_ner
 *   h -> /cls/{Gather(token 0), Gemm, Tanh, Gemm} -> sentiment   (a pooler head: only its scope names it)
 * Shape(h) -> Slice -> Concat is shared by the pos head's Reshape and the `hidden_shape` output
 * (a trunk tensor the head reads at a non-differentiable input; hidden_shape is not a head).
 */
export function multiHeadModel(opts: { shareLayerNorm?: boolean } = {}): ModelProto {
  const r = rng(3);
  const d = 4;
  const w = (name: string, dims: number[]) => float32Tensor(name, dims, randn(r, dims.reduce((a, b) => a * b, 1), 0.5));
  const node = (name: string, op: string, input: string[], output: string[], attrs?: Parameters<typeof makeAttrs>[0]): NodeProto => ({ name, op_type: op, input, output, attribute: makeAttrs(attrs) });
  const inits = [
    w('layer0.W', [d, d]), w('layer0.b', [d]), w('layer1.W', [d, d]), w('layer1.b', [d]),
    w('pos.W', [d, 3]), w('pos.b', [3]), w('ner.W', [d, 2]),
    w('pool.W', [d, d]), w('pool.b', [d]), w('cls.W', [2, d]), w('cls.b', [2]),
    float32Tensor('norm.weight', [d], [1, 1, 1, 1]),
    int64Tensor('zero', [1], [0]), int64Tensor('two', [1], [2]), int64Tensor('three', [1], [3]),
  ];
  const layer = (k: number, x: string) => [
    node(`/encoder/layer.${k}/MatMul`, 'MatMul', [x, `layer${k}.W`], [`/encoder/layer.${k}/MatMul_output_0`]),
    node(`/encoder/layer.${k}/Add`, 'Add', [`/encoder/layer.${k}/MatMul_output_0`, `layer${k}.b`], [`/encoder/layer.${k}/Add_output_0`]),
    node(`/encoder/layer.${k}/Relu`, 'Relu', [`/encoder/layer.${k}/Add_output_0`], [`/encoder/layer.${k}/Relu_output_0`]),
    node(`/encoder/layer.${k}/norm/Mul`, 'Mul', [`/encoder/layer.${k}/Relu_output_0`, opts.shareLayerNorm || k === 0 ? 'norm.weight' : 'norm1.weight'], [`/encoder/layer.${k}/norm/Mul_output_0`]),
  ];
  if (!opts.shareLayerNorm) inits.push(float32Tensor('norm1.weight', [d], [1.01, 0.99, 1, 1.02]));
  const h = '/encoder/layer.1/norm/Mul_output_0';
  const nodes: NodeProto[] = [
    ...layer(0, 'x'),
    ...layer(1, '/encoder/layer.0/norm/Mul_output_0'),
    node('/Shape', 'Shape', [h], ['/Shape_output_0']),
    node('/heads.pos/MatMul', 'MatMul', [h, 'pos.W'], ['/heads.pos/MatMul_output_0']),
    node('/heads.pos/Add', 'Add', ['/heads.pos/MatMul_output_0', 'pos.b'], ['/heads.pos/Add_output_0']),
    node('/Slice', 'Slice', ['/Shape_output_0', 'zero', 'two'], ['/Slice_output_0']),
    node('/Concat', 'Concat', ['/Slice_output_0', 'three'], ['/Concat_output_0'], { axis: A.int(0) }),
    node('/heads.pos/Reshape', 'Reshape', ['/heads.pos/Add_output_0', '/Concat_output_0'], ['pos_logits']),
    node('/heads.ner/MatMul', 'MatMul', [h, 'ner.W'], ['logits_ner']),
    node('/cls/Constant', 'Constant', [], ['/cls/Constant_output_0'], { value: A.tensor({ name: 'c0', data_type: I64, dims: [], raw_data: new Uint8Array(8) }) }),
    node('/cls/Gather', 'Gather', [h, '/cls/Constant_output_0'], ['/cls/Gather_output_0'], { axis: A.int(1) }),
    node('/cls/pooler/Gemm', 'Gemm', ['/cls/Gather_output_0', 'pool.W', 'pool.b'], ['/cls/pooler/Gemm_output_0'], { transB: A.int(1) }),
    node('/cls/pooler/Tanh', 'Tanh', ['/cls/pooler/Gemm_output_0'], ['/cls/pooler/Tanh_output_0']),
    node('/cls/out/Gemm', 'Gemm', ['/cls/pooler/Tanh_output_0', 'cls.W', 'cls.b'], ['sentiment'], { transB: A.int(1) }),
    node('/shape_out/Identity', 'Identity', ['/Concat_output_0'], ['hidden_shape']),
  ];
  return makeModel({
    nodes,
    inputs: [valueInfo('x', F, ['batch', 'sequence', d])],
    outputs: [valueInfo('pos_logits', F, ['batch', 'sequence', 3]), valueInfo('logits_ner', F, ['batch', 'sequence', 2]), valueInfo('sentiment', F, ['batch', 2]), valueInfo('hidden_shape', I64, [3])],
    initializers: inits,
    opset: 17,
  });
}

/** A single-output model: x -> MatMul W1 -> Add -> Relu -> MatMul W2 -> Add -> logits. */
export function singleHeadModel(): ModelProto {
  const r = rng(5);
  const w = (name: string, dims: number[]) => float32Tensor(name, dims, randn(r, dims.reduce((a, b) => a * b, 1), 0.5));
  const n = (name: string, op: string, input: string[], output: string[]): NodeProto => ({ name, op_type: op, input, output });
  return makeModel({
    nodes: [
      n('/body/MatMul', 'MatMul', ['x', 'W1'], ['a']), n('/body/Add', 'Add', ['a', 'b1'], ['b']), n('/body/Relu', 'Relu', ['b'], ['c']),
      n('/classifier/MatMul', 'MatMul', ['c', 'W2'], ['d']), n('/classifier/Add', 'Add', ['d', 'b2'], ['logits']),
    ],
    inputs: [valueInfo('x', F, ['batch', 3])],
    outputs: [valueInfo('logits', F, ['batch', 2])],
    initializers: [w('W1', [3, 4]), w('b1', [4]), w('W2', [4, 2]), w('b2', [2])],
    opset: 17,
  });
}
