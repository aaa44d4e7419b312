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
