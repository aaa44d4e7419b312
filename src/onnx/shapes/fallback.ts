// Shape inference, part 9: the onnxruntime fallback. When the static rules
// leave ranks unknown, run the forward twice on tiny synthetic batches with
// those tensors exposed as extra graph outputs, and read their shapes: the rank
// (fixed for a given graph) and the dims that were the same number in both runs.
import * as ort from 'onnxruntime-node';
import type { Model } from '../io';
import { DataType, ValueInfoProto } from '../proto';
import { createOrtSession } from '../ort';
import { Dim, tensorDims } from './dims';
import { ShapeHints, ShapeInference, inferShapes } from './inference';

export interface ObservedRanks {
  /** Observed shapes of the tensors whose rank static inference left unknown. */
  hints: ShapeHints;
  /** How many tensors were exposed (0: static inference knew every rank, no run was made). */
  asked: number;
  /** Why the run failed, when it did (the hints are then empty). */
  error?: string;
}

/** Top-level node outputs whose rank static inference leaves unknown. */
export function unknownRankTensors(model: Model, shapes: ShapeInference = inferShapes(model.proto.graph ?? {})): string[] {
  const out: string[] = [];
  for (const n of model.proto.graph?.node ?? []) for (const o of n.output ?? []) if (o && !shapes.shape(o)) out.push(o);
  return out;
}

// Two batch geometries: every symbolic (or unnamed) input dim gets a size from each list, in order of first use.
const SIZES: [number[], number[]] = [[2, 3, 5, 7, 11, 13], [3, 4, 6, 8, 12, 14]];

function feedsFor(inputs: ValueInfoProto[], run: 0 | 1): Record<string, ort.Tensor> {
  const sizes = new Map<string, number>();
  const sizeOf = (d: Dim, key: string): number => {
    if (typeof d === 'number') return d;
    const k = d ?? key;
    if (!sizes.has(k)) sizes.set(k, SIZES[run][Math.min(sizes.size, SIZES[run].length - 1)]);
    return sizes.get(k) as number;
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const vi of inputs) {
    const name = vi.name ?? '';
    const dims = (tensorDims(vi) ?? []).map((d, k) => sizeOf(d, `${name}:${k}`));
    const n = dims.reduce((a, b) => a * b, 1);
    // Ids 0 are valid in any vocabulary and type table; masks are all ones (every token real).
    const one = /mask/i.test(name) ? 1 : 0;
    switch (vi.type?.tensor_type?.elem_type) {
      case DataType.INT64: feeds[name] = new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(one)), dims); break;
      case DataType.INT32: feeds[name] = new ort.Tensor('int32', new Int32Array(n).fill(one), dims); break;
      case DataType.BOOL: feeds[name] = new ort.Tensor('bool', new Uint8Array(n).fill(one), dims); break;
      case DataType.DOUBLE: feeds[name] = new ort.Tensor('float64', new Float64Array(n).fill(one), dims); break;
      default: feeds[name] = new ort.Tensor('float32', new Float32Array(n).fill(one), dims); break;
    }
  }
  return feeds;
}

/**
 * Ask onnxruntime for the shapes of the tensors whose rank static inference leaves unknown.
 * Makes no run when there are none. A failing run is reported in `error`, never thrown.
 */
export async function observeUnknownRanks(model: Model, shapes?: ShapeInference): Promise<ObservedRanks> {
  const graph = model.proto.graph ?? {};
  const static_ = shapes ?? inferShapes(graph);
  const asked = unknownRankTensors(model, static_);
  if (!asked.length) return { hints: new Map(), asked: 0 };
  const existing = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const extra = asked.filter((t) => !existing.has(t)).map((name): ValueInfoProto => {
    const elem = static_.dtype(name);
    return elem ? { name, type: { tensor_type: { elem_type: elem } } } : { name };
  });
  const probe: Model = { ...model, proto: { ...model.proto, graph: { ...graph, output: [...(graph.output ?? []), ...extra] } } };
  const inits = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  try {
    const session = await createOrtSession(probe, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
    try {
      const runs: Record<string, readonly number[]>[] = [];
      for (const r of [0, 1] as const) {
        const out = await session.run(feedsFor(inputs, r), asked);
        runs.push(Object.fromEntries(asked.map((t) => [t, out[t].dims])));
      }
      const hints = new Map<string, Dim[]>();
      for (const t of asked) {
        const [a, b] = [runs[0][t], runs[1][t]];
        if (a.length !== b.length) continue; // a rank that changes with the input is no rank to rely on
        hints.set(t, a.map((d, k) => (d === b[k] ? d : null)));
      }
      return { hints, asked: asked.length };
    } finally {
      await session.release();
    }
  } catch (e) {
    return { hints: new Map(), asked: asked.length, error: String((e as Error).message).split('\n')[0] };
  }
}
