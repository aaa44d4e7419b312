// Model limits read from the graph, checked by every data path before anything is
// written: the longest sequence the model takes (its position-embedding table's
// rows, a fixed-size position buffer it slices, or a static sequence dim), and a
// rough activation-memory estimate for a batch, so a batch size that would exhaust
// memory is refused with a line instead of an allocation failure inside onnxruntime.
import * as os from 'os';
import { Model } from './io';
import { Graph } from './graph';
import { GrlError } from './errors';
import { DataType, NodeProto, TensorProto, toNumber } from './proto';
import { dimsOf, elementSize, tensorToInts } from './tensor';
import { attrTensor } from './attrs';
import { inferShapes } from './shapes';

export interface SequenceLimit {
  /** The most tokens an example may have. */
  limit: number;
  /** Where the limit comes from, for messages: `position table 'x' has 64 rows`. */
  source: string;
}

const INT_TYPES = new Set<number>([DataType.INT64, DataType.INT32]);
/** How far back from a Gather's indices we look for what computes them. */
const MAX_WALK = 256;

/** The token-id input (input_ids, else the first int rank-2 graph input that is not an initializer). */
export function tokenInput(model: Model): { name: string; batch: number | string | null; sequence: number | string | null } | undefined {
  const g = model.proto.graph ?? {};
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const candidates = (g.input ?? []).filter((i) => !inits.has(i.name) && INT_TYPES.has(i.type?.tensor_type?.elem_type ?? 0) && i.type?.tensor_type?.shape?.dim?.length === 2);
  const input = candidates.find((i) => i.name === 'input_ids') ?? candidates[0];
  if (!input) return undefined;
  const dim = (k: number) => {
    const d = input.type?.tensor_type?.shape?.dim?.[k];
    if (d?.dim_value !== undefined && d.dim_value !== null && toNumber(d.dim_value) > 0) return toNumber(d.dim_value);
    return d?.dim_param || null;
  };
  return { name: input.name ?? '', batch: dim(0), sequence: dim(1) };
}

/** Values of a small int initializer or Constant output, else undefined. */
function constInts(g: Graph, name: string): number[] | undefined {
  const t: TensorProto | undefined = g.initializer(name) ?? (g.producer(name)?.op_type === 'Constant' ? attrTensor(g.producer(name) as NodeProto, 'value') : undefined);
  if (!t || !INT_TYPES.has(t.data_type ?? 0) || dimsOf(t).reduce((a, b) => a * b, 1) > 1 << 16) return undefined;
  try {
    return tensorToInts(t);
  } catch {
    return undefined;
  }
}

const isArange = (v: number[] | undefined) => !!v && v.length > 1 && v.every((x, i) => x === i);

/**
 * How the indices of a Gather are computed, walking back through their producers:
 * `positional` when they come from Range or CumSum (computed positions), a graph input
 * named position_ids, or a slice of a 0..N-1 buffer (torch exports of BERT), and are not
 * clamped on the way (relative-position buckets are, and bound nothing); `offset`
 * is the constant a CumSum path adds (RoBERTa's padding_idx: positions start at p + 1).
 */
function positionalIndices(g: Graph, indices: string): { positional: boolean; offset: number } {
  const seen = new Set<string>();
  const stack = [indices];
  let positional = false;
  let cumsum = false;
  let offset = 0;
  while (stack.length && seen.size < MAX_WALK) {
    const t = stack.pop() as string;
    if (!t || seen.has(t)) continue;
    seen.add(t);
    if (g.isGraphInput(t) && !g.initializer(t)) {
      if (/position/i.test(t)) positional = true;
      continue;
    }
    if (isArange(g.initializer(t) ? constInts(g, t) : undefined)) positional = true;
    const n = g.producer(t);
    if (!n) continue;
    // Clamped indices (T5's relative-position buckets: Abs, Log, Min) never run past the table.
    if (n.op_type === 'Min' || n.op_type === 'Clip' || n.op_type === 'Abs') return { positional: false, offset: 0 };
    if (n.op_type === 'Range') positional = true;
    if (n.op_type === 'CumSum') cumsum = true;
    if (n.op_type === 'Constant' && isArange(constInts(g, t))) positional = true;
    if (n.op_type === 'Add') {
      for (const i of n.input ?? []) {
        const v = constInts(g, i);
        if (v?.length === 1 && v[0] > 0) offset = Math.max(offset, v[0]);
      }
    }
    for (const i of n.input ?? []) stack.push(i);
  }
  return { positional: positional || cumsum, offset: cumsum ? offset : 0 };
}

/**
 * The longest sequence `model` takes, or undefined when nothing in the graph bounds it.
 * The smallest of: the rows of each position-embedding table (a Gather on a 2-D float
 * initializer whose indices are computed positions), the size of a fixed position buffer
 * the graph slices to the sequence length (a `min(sequence, N)` dim), and a static
 * sequence dim on the token input.
 */
export function sequenceLimit(model: Model): SequenceLimit | undefined {
  const g = new Graph(model.proto.graph ?? {});
  const found: SequenceLimit[] = [];
  for (const n of g.nodes) {
    if (n.op_type !== 'Gather') continue;
    const [data, idx] = n.input ?? [];
    const table = g.initializer(data);
    if (!table || dimsOf(table).length !== 2 || !idx || !(table.data_type === DataType.FLOAT || table.data_type === DataType.FLOAT16 || table.data_type === DataType.BFLOAT16)) continue;
    const { positional, offset } = positionalIndices(g, idx);
    if (!positional) continue;
    const rows = dimsOf(table)[0];
    found.push({ limit: rows - offset - (offset ? 1 : 0), source: `position table '${data}' has ${rows} rows${offset ? ` (positions start at ${offset + 1})` : ''}` });
  }
  const input = tokenInput(model);
  if (typeof input?.sequence === 'number') found.push({ limit: input.sequence, source: `input '${input.name}' has a static sequence dim of ${input.sequence}` });
  if (typeof input?.sequence === 'string') {
    const shapes = inferShapes(model.proto.graph ?? {});
    const prefix = `min(${input.sequence},`;
    for (const n of g.nodes) {
      for (const o of n.output ?? []) {
        for (const d of shapes.shape(o) ?? []) {
          if (typeof d === 'string' && d.startsWith(prefix) && d.endsWith(')')) {
            const v = Number(d.slice(prefix.length, -1));
            if (Number.isInteger(v) && v > 0) found.push({ limit: v, source: `the graph slices a ${v}-position buffer to the sequence length ('${o}')` });
          }
        }
      }
    }
  }
  if (!found.length) return undefined;
  return found.reduce((a, b) => (b.limit < a.limit ? b : a));
}

/**
 * The check every data path runs per example: the length to keep. Over the limit it
 * throws `WHERE: 'KEY' has N tokens but the model takes at most L (SOURCE)...`, or with
 * `truncate` returns the limit (the caller cuts the example and counts it).
 */
export function checkSequenceLength(where: string, key: string, length: number, limit: SequenceLimit | undefined, truncate = false): number {
  if (!limit || length <= limit.limit) return length;
  if (truncate) return limit.limit;
  throw new GrlError(`${where}: '${key}' has ${length} tokens but the model takes at most ${limit.limit} (${limit.source}); shorten it or pass --truncate to cut such examples`);
}

/**
 * Rough bytes of activations one training step keeps for a [batch, sequence] input:
 * every node output whose shape is known, with the batch and sequence symbols set (any
 * other unknown dim counts as 1, so this under- rather than over-estimates), twice (the
 * forward values kept for backward, and their gradients).
 */
export function estimateTrainingBytes(model: Model, batch: number, sequence: number): number {
  const input = tokenInput(model);
  const shapes = inferShapes(model.proto.graph ?? {});
  const value = (d: number | string | null): number => {
    if (typeof d === 'number') return Math.max(d, 0);
    if (d === null) return 1;
    if (d === input?.batch) return batch;
    if (d === input?.sequence) return sequence;
    const m = /^min\((.+),([0-9]+)\)$/.exec(d);
    if (m && m[1] === input?.sequence) return Math.min(sequence, Number(m[2]));
    return 1;
  };
  let bytes = 0;
  for (const n of model.proto.graph?.node ?? []) {
    for (const o of n.output ?? []) {
      const s = o ? shapes.shape(o) : undefined;
      if (!s) continue;
      bytes += s.reduce((a: number, d) => a * value(d), 1) * (elementSize(shapes.dtype(o) ?? DataType.FLOAT) || 4);
    }
  }
  return 2 * bytes;
}

const GiB = 2 ** 30;

/**
 * Refuse a batch whose activations alone would not fit in this machine's memory. The
 * estimate is rough, so only a clear excess is refused: a run the estimate puts under the
 * physical memory goes ahead.
 */
export function checkBatchMemory(model: Model, batch: number, sequence: number, totalBytes = os.totalmem()): void {
  const need = estimateTrainingBytes(model, batch, sequence);
  if (need <= totalBytes) return;
  const gib = (x: number) => `${(x / GiB).toFixed(1)} GiB`;
  throw new GrlError(`batch size ${batch} × ${sequence} tokens needs about ${gib(need)} of activations per step, more than this machine's ${gib(totalBytes)} of memory; lower --batch-size (with --grad-accum to keep the effective batch) or shorten the sequences`);
}
