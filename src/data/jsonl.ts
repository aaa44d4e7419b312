// Data: JSON Lines examples in the trainer's format, validated up front, and
// padded batches. One example per line; keys naming model inputs feed those
// inputs, keys naming heads hold labels (an array for a token head, a number
// for a sequence head; -100 = ignore). MSE (regression) heads hold float
// targets shaped like the head's output per example; their ignore value is NaN
// (the loss skips NaN labels), which padding writes and `null` in the data stands
// for: JSON has no NaN, and `null` is what pandas and friends write for a missing
// value. Every problem is reported as `FILE:LINE: what is wrong` before any
// training starts.
import * as fs from 'fs';
import { GrlError } from '../onnx/errors';
import { SequenceLimit, checkSequenceLength } from '../onnx/limits';

export const IGNORE_INDEX = -100;
/** `optionalInputs` fill value meaning "the token's position" (0..len-1), for position_ids. */
export const POSITION_FILL = -1;

/** What the data must provide, derived from the model and the loss heads. */
export interface DataSpec {
  /** Model inputs fed from the data (int64, [batch, seq]). */
  inputs: string[];
  /** Model inputs that may be absent from a line: filled with `fill` (attention_mask: 1, others: 0). */
  optionalInputs?: Record<string, number>;
  /** Label keys: one per loss head. */
  labels: LabelSpec[];
  /** Rows of the embedding table each id input indexes (e.g. input_ids → vocab size). */
  idLimits?: Record<string, number>;
  /** The input whose length defines the sequence length (default `input_ids`, else the first input). */
  lengthKey?: string;
  /** The longest sequence the model takes (sequenceLimit(model)): longer lines are an error... */
  sequenceLimit?: SequenceLimit;
  /** ...or are cut to the limit (Example.truncatedFrom records the original length). */
  truncate?: boolean;
}

export interface LabelSpec {
  key: string;
  tokenLevel: boolean;
  numClasses?: number;
  kind?: 'ce' | 'mse';
  /**
   * MSE only: the output's static dims after the batch (and, token-level, the sequence)
   * dimension; [] or [1] means one number per example (per token), [K] an array of K.
   */
  dims?: number[];
}

/** Float targets per example (sequence-level) or per token (token-level) of an MSE head. */
export const mseWidth = (l: LabelSpec): number => (l.dims ?? []).reduce((a, d) => a * d, 1);

const FLOAT32_MAX = 3.4028234663852886e38;

export interface Example {
  line: number;
  length: number;
  inputs: Record<string, Int32Array>;
  labels: Record<string, Float64Array | number>;
  /** Set when the example was cut to the model's sequence limit: its length in the file. */
  truncatedFrom?: number;
}

/** How many examples were cut to the model's sequence limit. */
export const countTruncated = (examples: Example[]): number => examples.reduce((n, e) => n + (e.truncatedFrom !== undefined ? 1 : 0), 0);

/** An example cut to its first `keep` tokens (inputs and token-level labels). */
export function truncateExample(e: Example, keep: number, spec: DataSpec): Example {
  const inputs = Object.fromEntries(Object.entries(e.inputs).map(([k, v]) => [k, v.slice(0, keep)]));
  const labels: Record<string, Float64Array | number> = {};
  for (const [k, v] of Object.entries(e.labels)) {
    const l = spec.labels.find((x) => x.key === k);
    labels[k] = typeof v === 'number' || !l?.tokenLevel ? v : v.slice(0, keep * (l.kind === 'mse' ? mseWidth(l) : 1));
  }
  return { line: e.line, length: keep, inputs, labels, truncatedFrom: e.length };
}

function fail(file: string, line: number, msg: string): never {
  throw new GrlError(`${file}:${line}: ${msg}`, { file });
}

/** One MSE target value: a finite number that float32 can hold, or null = ignore (NaN). */
function mseValue(file: string, line: number, where: string, x: unknown): number {
  if (x === null) return NaN;
  // String(), not JSON.stringify: 1e400 parses to Infinity, which JSON would show as null.
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(file, line, `label '${where}' is ${typeof x === 'number' ? String(x) : JSON.stringify(x)}, not a finite number`);
  if (Math.abs(x) > FLOAT32_MAX) fail(file, line, `label '${where}' = ${x} does not fit in float32`);
  return x;
}

/**
 * `width` targets at `where`: a number when width is 1 ([x] is accepted too), else an array of
 * `width` numbers. null ignores them all (a token or an example without targets), and any one
 * number may be null.
 */
function mseValues(file: string, line: number, where: string, v: unknown, width: number, unit: string, out: Float64Array, at: number): void {
  if (width === 1 && !Array.isArray(v)) {
    out[at] = mseValue(file, line, where, v);
    return;
  }
  if (v === null) {
    out.fill(NaN, at, at + width);
    return;
  }
  if (!Array.isArray(v)) fail(file, line, `label '${where}' must be an array of ${width} numbers (the head's output has ${width} values ${unit})`);
  if (v.length !== width) fail(file, line, `label '${where}' has ${v.length} numbers but the head's output has ${width} ${unit}`);
  for (let i = 0; i < width; i++) out[at + i] = mseValue(file, line, `${where}[${i}]`, v[i]);
}

/** An MSE head's label, flattened: [width] (sequence-level) or [length × width] (token-level). */
function mseLabel(file: string, line: number, l: LabelSpec, v: unknown, length: number, lengthKey: string): Float64Array | number {
  const width = mseWidth(l);
  if (!l.tokenLevel) {
    const out = new Float64Array(width);
    mseValues(file, line, l.key, v, width, 'per example', out, 0);
    return width === 1 ? out[0] : out;
  }
  // A whole token-level label is never null: one entry per token keeps the length check meaningful.
  if (!Array.isArray(v)) fail(file, line, `label '${l.key}' must be an array (one target per token, null for a token without one)`);
  if (v.length !== length) fail(file, line, `label '${l.key}' has ${v.length} items but '${lengthKey}' has ${length}`);
  const out = new Float64Array(length * width);
  for (let t = 0; t < length; t++) mseValues(file, line, `${l.key}[${t}]`, v[t], width, 'per token', out, t * width);
  return out;
}

function intArray(file: string, line: number, key: string, v: unknown): Int32Array {
  if (!Array.isArray(v)) fail(file, line, `'${key}' must be an array of integers`);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x)) fail(file, line, `'${key}'[${i}] is ${JSON.stringify(x)}, not an integer`);
    if (x < -2147483648 || x > 2147483647) fail(file, line, `'${key}'[${i}] = ${x} is out of range`);
    out[i] = x;
  }
  return out;
}

/** Read and validate a JSONL file completely. Throws GrlError naming file and line. */
export function loadJsonl(file: string, spec: DataSpec): Example[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''); // a UTF-8 byte-order mark
  } catch (e) {
    throw new GrlError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`, { file });
  }
  return parseJsonl(text, file, spec);
}

export function parseJsonl(text: string, file: string, spec: DataSpec): Example[] {
  const lengthKey = spec.lengthKey ?? (spec.inputs.includes('input_ids') ? 'input_ids' : spec.inputs[0]);
  const examples: Example[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k].trim();
    if (!raw) continue;
    const line = k + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      // Python's json.dumps writes float('nan') as NaN, which is not JSON.
      const hint = /\bNaN\b/.test(raw) ? '; JSON has no NaN: write null for a target to ignore' : '';
      fail(file, line, `malformed JSON (${(e as Error).message})${hint}`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail(file, line, 'each line must be a JSON object');
    const rec = obj as Record<string, unknown>;
    const inputs: Record<string, Int32Array> = {};
    for (const name of spec.inputs) {
      if (!(name in rec)) {
        if (spec.optionalInputs && name in spec.optionalInputs) continue;
        fail(file, line, `missing input key '${name}'`);
      }
      inputs[name] = intArray(file, line, name, rec[name]);
    }
    const lenArr = inputs[lengthKey];
    if (!lenArr) fail(file, line, `missing input key '${lengthKey}'`);
    const length = lenArr.length;
    if (length === 0) fail(file, line, `'${lengthKey}' is empty`);
    for (const [name, arr] of Object.entries(inputs)) {
      if (arr.length !== length) fail(file, line, `'${name}' has ${arr.length} items but '${lengthKey}' has ${length}`);
      const limit = spec.idLimits?.[name];
      if (limit !== undefined) {
        for (let i = 0; i < arr.length; i++) {
          if (arr[i] < 0 || arr[i] >= limit) fail(file, line, `'${name}'[${i}] = ${arr[i]} is outside the embedding table [0, ${limit})`);
        }
      }
    }
    const labels: Record<string, Float64Array | number> = {};
    for (const l of spec.labels) {
      if (!(l.key in rec)) fail(file, line, `missing label key '${l.key}'`);
      const v = rec[l.key];
      if (l.kind === 'mse') {
        labels[l.key] = mseLabel(file, line, l, v, length, lengthKey);
        continue;
      }
      const check = (x: unknown, where: string): number => {
        if (typeof x !== 'number' || !Number.isInteger(x)) fail(file, line, `label '${where}' is ${JSON.stringify(x)}, not an integer class id`);
        if (x !== IGNORE_INDEX && (x < 0 || (l.numClasses !== undefined && x >= l.numClasses))) {
          fail(file, line, `label '${where}' = ${x} is outside [0, ${l.numClasses ?? '?'}) (use -100 to ignore)`);
        }
        return x;
      };
      if (l.tokenLevel) {
        if (!Array.isArray(v)) fail(file, line, `label '${l.key}' must be an array (one label per token)`);
        if (v.length !== length) fail(file, line, `label '${l.key}' has ${v.length} items but '${lengthKey}' has ${length}`);
        labels[l.key] = Float64Array.from(v, (x, i) => check(x, `${l.key}[${i}]`));
      } else {
        if (Array.isArray(v)) fail(file, line, `label '${l.key}' must be a single number for a sequence head`);
        labels[l.key] = check(v, l.key);
      }
    }
    const keep = checkSequenceLength(`${file}:${line}`, lengthKey, length, spec.sequenceLimit, spec.truncate);
    const example: Example = { line, length, inputs, labels };
    examples.push(keep < length ? truncateExample(example, keep, spec) : example);
  }
  if (examples.length === 0) throw new GrlError(`${file}: empty file, no examples`, { file });
  return examples;
}

export interface Batch {
  size: number;
  seqLen: number;
  /** int64 inputs, row-major [size, seqLen]. */
  inputs: Record<string, BigInt64Array>;
  /** Labels: int64 [size, seqLen] or [size] for CE heads (-100 = ignore); float32 [size, (seqLen,) ...dims] for MSE heads (NaN = ignore). */
  labels: Record<string, BigInt64Array | Float32Array>;
  lines: number[];
}

/** Pad a batch to its longest example: token 0, attention mask 0, label -100 (CE) or NaN (MSE). */
export function makeBatch(examples: Example[], spec: DataSpec): Batch {
  const size = examples.length;
  const seqLen = Math.max(...examples.map((e) => e.length));
  const inputs: Record<string, BigInt64Array> = {};
  for (const name of spec.inputs) {
    const arr = new BigInt64Array(size * seqLen);
    const fill = spec.optionalInputs?.[name] ?? 0;
    examples.forEach((e, b) => {
      const src = e.inputs[name];
      for (let t = 0; t < e.length; t++) arr[b * seqLen + t] = BigInt(src ? src[t] : fill === POSITION_FILL ? t : fill);
    });
    inputs[name] = arr;
  }
  const labels: Record<string, BigInt64Array | Float32Array> = {};
  for (const l of spec.labels) {
    if (l.kind === 'mse') {
      // NaN is MSE's ignore value: padded tokens add nothing to the loss or its count.
      const per = (l.tokenLevel ? seqLen : 1) * mseWidth(l);
      const arr = new Float32Array(size * per).fill(NaN);
      examples.forEach((e, b) => {
        const v = e.labels[l.key];
        if (typeof v === 'number') arr[b * per] = v;
        else arr.set(v, b * per);
      });
      labels[l.key] = arr;
      continue;
    }
    const arr = new BigInt64Array(l.tokenLevel ? size * seqLen : size).fill(BigInt(IGNORE_INDEX));
    examples.forEach((e, b) => {
      const v = e.labels[l.key];
      if (typeof v === 'number') arr[b] = BigInt(v);
      else for (let t = 0; t < e.length; t++) arr[b * seqLen + t] = BigInt(v[t]);
    });
    labels[l.key] = arr;
  }
  return { size, seqLen, inputs, labels, lines: examples.map((e) => e.line) };
}

/** Deterministic PRNG (mulberry32) whose whole state is one integer, so it can be checkpointed. */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Fisher–Yates permutation of 0..n-1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
}

/**
 * Epoch-ordered batches. The order of epoch e is a permutation seeded by (seed, e), so
 * the position (epoch, index) alone is enough to resume exactly.
 */
export class BatchOrder {
  constructor(readonly n: number, readonly batchSize: number, readonly shuffle: boolean, readonly seed: number) {}
  get batchesPerEpoch(): number {
    return Math.ceil(this.n / this.batchSize);
  }
  /** Example indices of global batch number `k` (0-based). */
  batch(k: number): number[] {
    const epoch = Math.floor(k / this.batchesPerEpoch);
    const i = k % this.batchesPerEpoch;
    const order = this.order(epoch);
    return order.slice(i * this.batchSize, Math.min(this.n, (i + 1) * this.batchSize));
  }
  private cache: { epoch: number; order: number[] } | undefined;
  order(epoch: number): number[] {
    if (this.cache?.epoch === epoch) return this.cache.order;
    const order = this.shuffle ? new Rng((this.seed * 1000003 + epoch * 7919) >>> 0).permutation(this.n) : Array.from({ length: this.n }, (_, i) => i);
    this.cache = { epoch, order };
    return order;
  }
}
