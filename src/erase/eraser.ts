// Concept erasure, the one eraser type every method produces: an affine map
// x ↦ x − ((x − b) U) Vᵀ on row vectors, i.e. x ↦ x·P + c with P = I − U Vᵀ
// and c = b U Vᵀ. The low-rank factors U, V (d × k) are kept; the dense P and c
// are what the ONNX splice writes (one MatMul, plus an Add when c ≠ 0).
// (EleutherAI's LeaceEraser stores the same thing as proj_left/proj_right.)
import type { Matrix } from 'ml-matrix';
import { GrlError } from '../onnx/errors';

export type EraseMethod = 'leace' | 'inlp' | 'random';
export const ERASE_METHODS: readonly EraseMethod[] = ['leace', 'inlp', 'random'];

export interface Eraser {
  readonly method: EraseMethod;
  readonly dim: number;
  /** Rank of the change: the number of columns of U and V. */
  readonly rank: number;
  /** Row-major [dim, rank]. */
  readonly u: Float64Array;
  /** Row-major [dim, rank]. For the orthogonal projections (INLP, random) V = U. */
  readonly v: Float64Array;
  /** The point the change is taken around (LEACE: the mean of the fit data); absent = 0. */
  readonly bias?: Float64Array;
}

export function makeEraser(method: EraseMethod, dim: number, u: Float64Array, v: Float64Array, bias?: Float64Array): Eraser {
  const rank = dim > 0 ? u.length / dim : 0;
  if (!Number.isInteger(rank) || v.length !== u.length) throw new GrlError(`eraser: factors of ${u.length} and ${v.length} values do not fit dim ${dim}`);
  if (bias && bias.length !== dim) throw new GrlError(`eraser: bias has ${bias.length} values, expected ${dim}`);
  return { method, dim, rank, u, v, bias };
}

/** The dense map: P = I − U Vᵀ ([dim, dim], row-major) and c = b U Vᵀ (undefined without a bias). */
export function denseEraser(e: Eraser): { p: Float64Array; c?: Float64Array } {
  const { dim: d, rank: k, u, v } = e;
  const p = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    p[i * d + i] = 1;
    for (let r = 0; r < k; r++) {
      const uir = u[i * k + r];
      if (uir === 0) continue;
      for (let j = 0; j < d; j++) p[i * d + j] -= uir * v[j * k + r];
    }
  }
  if (!e.bias) return { p };
  const bu = new Float64Array(k);
  for (let i = 0; i < d; i++) for (let r = 0; r < k; r++) bu[r] += e.bias[i] * u[i * k + r];
  const c = new Float64Array(d);
  for (let j = 0; j < d; j++) for (let r = 0; r < k; r++) c[j] += bu[r] * v[j * k + r];
  return { p, c };
}

/** Apply the eraser to row-major [rows, dim] data (float64 arithmetic, float32 result). */
export function applyEraser(e: Eraser, x: Float32Array, rows: number): Float32Array {
  const { dim: d, rank: k, u, v, bias } = e;
  if (x.length !== rows * d) throw new GrlError(`eraser: ${x.length} values is not rows × dim = ${rows} × ${d}`);
  const out = new Float32Array(x.length);
  const t = new Float64Array(k);
  for (let n = 0; n < rows; n++) {
    const o = n * d;
    t.fill(0);
    for (let i = 0; i < d; i++) {
      const xi = x[o + i] - (bias ? bias[i] : 0);
      for (let r = 0; r < k; r++) t[r] += xi * u[i * k + r];
    }
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let r = 0; r < k; r++) s += t[r] * v[j * k + r];
      out[o + j] = x[o + j] - s;
    }
  }
  return out;
}

/** The orthogonal projection onto the complement of an orthonormal basis (columns of `basis`): P = I − B Bᵀ. */
export function orthogonalEraser(basis: Matrix, dim: number, method: 'inlp' | 'random' = 'inlp'): Eraser {
  const k = basis.columns;
  const u = new Float64Array(dim * k);
  for (let i = 0; i < dim; i++) for (let r = 0; r < k; r++) u[i * k + r] = basis.get(i, r);
  return makeEraser(method, dim, u, u);
}
