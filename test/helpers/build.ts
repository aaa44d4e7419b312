// Test helpers: build small ONNX models by hand and run them in onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { DataType, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/onnx/proto';
import { serializeModel } from '../../src/onnx/io';
import { Rng } from '../../src/data/jsonl';

export type Dims = (number | string)[];

export function valueInfo(name: string, elemType: number, dims?: Dims): ValueInfoProto {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } : undefined } },
  };
}

export function makeModel(args: {
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
  opset?: number;
  extraOpsets?: { domain: string; version: number }[];
}): ModelProto {
  return {
    ir_version: 8,
    producer_name: 'grl-onnx-test',
    opset_import: [{ domain: '', version: args.opset ?? 17 }, ...(args.extraOpsets ?? [])],
    graph: { name: 'test', node: args.nodes, input: args.inputs, output: args.outputs, initializer: args.initializers ?? [] },
  };
}

/**
 * A small two-head graph reading the tensor 'x': a Tanh encoder (We, be) and two linear heads, 'main'
 * (Wm, bm -> main_logits) and 'adv' (Wa, ba -> adv_logits). A fresh array each call.
 */
export function twoHeadNodes(): NodeProto[] {
  return [
    { name: '/enc/MatMul', op_type: 'MatMul', input: ['x', 'We'], output: ['e0'] },
    { name: '/enc/Add', op_type: 'Add', input: ['e0', 'be'], output: ['e1'] },
    { name: '/enc/Tanh', op_type: 'Tanh', input: ['e1'], output: ['h'] },
    { name: '/main/MatMul', op_type: 'MatMul', input: ['h', 'Wm'], output: ['m0'] },
    { name: '/main/Add', op_type: 'Add', input: ['m0', 'bm'], output: ['main_logits'] },
    { name: '/adv/MatMul', op_type: 'MatMul', input: ['h', 'Wa'], output: ['a0'] },
    { name: '/adv/Add', op_type: 'Add', input: ['a0', 'ba'], output: ['adv_logits'] },
  ];
}

export async function session(model: ModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(serializeModel(model), { graphOptimizationLevel: 'disabled' });
}

/** Deterministic pseudo-random numbers (grl-onnx's mulberry32 Rng). */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export function randn(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

export const F = DataType.FLOAT;
export const I64 = DataType.INT64;
export const BOOL = DataType.BOOL;
