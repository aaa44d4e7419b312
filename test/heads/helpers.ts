// Test helpers for src/heads: the encoder fixtures, a padded batch for them,
// ORT runs returning float arrays, and the head math computed in plain JS
// from the stored initializers (x @ W + b, erf-GELU, LayerNorm, pooling).
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Model, serializeModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';

export const ROOT = path.join(__dirname, '..', '..');
export const ENCODER = path.join(ROOT, 'models', 'encoders', 'bert-encoder.onnx');
export const TOKCLS = path.join(ROOT, 'models', 'encoders', 'bert-encoder-tokcls.onnx');
export const MINI = path.join(ROOT, 'test', 'fixtures', 'encoders', 'bert-mini.onnx');

export const B = 3;
export const T = 6;
/** Row 0 full, row 1 two pads, row 2 four pads. */
export const MASK = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0];

export function batchFeeds(vocab: number): Record<string, ort.Tensor> {
  const ids = MASK.map((m, k) => (m ? (101 + 37 * k) % vocab : 0));
  const i64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), [B, T]);
  return { input_ids: i64(ids), attention_mask: i64(MASK), token_type_ids: i64(MASK.map((_, k) => (k % T >= 4 ? 1 : 0))) };
}

export type Floats = Record<string, { data: Float32Array; dims: readonly number[] }>;

export async function runFloats(model: Model | string, feeds: Record<string, ort.Tensor>): Promise<Floats> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(serializeModel(model));
  try {
    const r = await s.run(feeds);
    const out: Floats = {};
    for (const n of s.outputNames) out[n] = { data: Float32Array.from(r[n].data as Float32Array), dims: r[n].dims };
    return out;
  } finally {
    await s.release();
  }
}

export function init(model: Model, name: string): Float32Array {
  const t = (model.proto.graph?.initializer ?? []).find((x) => x.name === name);
  if (!t) throw new Error(`no initializer ${name}`);
  return tensorToFloat32(t, model.baseDir);
}

/** [n, k] @ [k, m] + b, in float64. */
export function affine(x: ArrayLike<number>, n: number, k: number, w: ArrayLike<number>, m: number, b?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = b ? b[j] : 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[t * m + j];
      y[i * m + j] = s;
    }
  }
  return y;
}

/** erf to ~1e-12 (series below 3, continued fraction above), so GELU is not the error source. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let sum = ax;
  let term = ax;
  for (let n = 1; n < 200; n++) {
    term *= (-ax * ax) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}

export const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));

export function layerNorm(x: ArrayLike<number>, n: number, d: number, g: ArrayLike<number>, b: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let mu = 0;
    for (let k = 0; k < d; k++) mu += x[i * d + k] / d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[i * d + k] - mu) ** 2 / d;
    for (let k = 0; k < d; k++) y[i * d + k] = ((x[i * d + k] - mu) / Math.sqrt(v + eps)) * g[k] + b[k];
  }
  return y;
}

/** max |a - b| relative to max(1, max |b|). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  let scale = 1;
  for (let k = 0; k < b.length; k++) scale = Math.max(scale, Math.abs(b[k]));
  for (let k = 0; k < b.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
  return worst / scale;
}
