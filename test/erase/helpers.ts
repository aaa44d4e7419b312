// Shared checks for the erasure tests: class means, least-squares decodability,
// and synthetic features with known concept directions.
import { Matrix, pseudoInverse } from 'ml-matrix';
import { Rng } from '../../src/data/jsonl';
import { gaussian } from '../../src/probe/probe';
import type { Features } from '../../src/probe/features';

/** Mean of all rows and of each class's rows. */
export function classMeans(x: Float32Array, y: ArrayLike<number>, dim: number, classes: number): { all: Float64Array; byClass: Float64Array[] } {
  const all = new Float64Array(dim);
  const byClass = Array.from({ length: classes }, () => new Float64Array(dim));
  const n = new Array<number>(classes).fill(0);
  for (let r = 0; r < y.length; r++) {
    n[y[r]]++;
    for (let i = 0; i < dim; i++) {
      all[i] += x[r * dim + i];
      byClass[y[r]][i] += x[r * dim + i];
    }
  }
  for (let i = 0; i < dim; i++) all[i] /= y.length;
  byClass.forEach((m, c) => m.forEach((v, i) => (m[i] = n[c] ? v / n[c] : all[i])));
  return { all, byClass };
}

/** Largest |class mean − overall mean| over classes and coordinates. */
export function maxMeanGap(x: Float32Array, y: ArrayLike<number>, dim: number, classes: number): number {
  const { all, byClass } = classMeans(x, y, dim, classes);
  let gap = 0;
  for (const m of byClass) for (let i = 0; i < dim; i++) gap = Math.max(gap, Math.abs(m[i] - all[i]));
  return gap;
}

/**
 * Closed-form least squares of the one-hot labels on centred x (the intercept is the label
 * mean), by the normal equations: coef = pinv(XcᵀXc) XcᵀZc, with eigenvalues of the Gram
 * matrix below 1e-9 · dim · λ_max treated as zero (erased data is rank-deficient up to
 * float32 rounding, which the Gram matrix squares). Returns the norm of the
 * coefficients and the accuracy of the argmax of the predictions on the fit rows.
 */
export function leastSquaresProbe(x: Float32Array, y: ArrayLike<number>, dim: number, classes: number): { coefNorm: number; accuracy: number } {
  const rows = y.length;
  const { all } = classMeans(x, y, dim, classes);
  const prior = new Array<number>(classes).fill(0);
  for (let r = 0; r < rows; r++) prior[y[r]] += 1 / rows;
  const xc = new Matrix(rows, dim);
  const zc = new Matrix(rows, classes);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dim; i++) xc.set(r, i, x[r * dim + i] - all[i]);
    for (let c = 0; c < classes; c++) zc.set(r, c, (c === y[r] ? 1 : 0) - prior[c]);
  }
  const xt = xc.transpose();
  const coef = pseudoInverse(xt.mmul(xc), 1e-9).mmul(xt.mmul(zc)); // [dim, classes]
  let norm = 0;
  for (let i = 0; i < dim; i++) for (let c = 0; c < classes; c++) norm += coef.get(i, c) ** 2;
  const pred = xc.mmul(coef);
  let hit = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (pred.get(r, c) + prior[c] > pred.get(r, best) + prior[best]) best = c;
    if (best === y[r]) hit++;
  }
  return { coefNorm: Math.sqrt(norm), accuracy: hit / rows };
}

/**
 * Features whose class c is shifted by `scale`·directions[c] (unit vectors), on top of
 * Gaussian noise, correlated through a fixed random mixing matrix I + mixing·N(0, 1) (so Σxx is
 * far from I unless mixing = 0).
 */
export function synthetic(rows: number, dim: number, directions: number[][], priors: number[], seed: number, scale = 3, mixing = 0.4): Features {
  const rng = new Rng(seed);
  const mix = Array.from({ length: dim * dim }, (_, k) => (k % (dim + 1) === 0 ? 1 : 0) + mixing * gaussian(rng));
  const x = new Float32Array(rows * dim);
  const y = new Int32Array(rows);
  const noise = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const u = rng.next();
    let c = 0;
    for (let acc = priors[0]; u >= acc && c < priors.length - 1; acc += priors[++c]);
    y[r] = c;
    for (let i = 0; i < dim; i++) noise[i] = gaussian(rng);
    for (let i = 0; i < dim; i++) {
      let v = 0.5 + (directions[c]?.[i] ?? 0) * scale;
      for (let j = 0; j < dim; j++) v += mix[i * dim + j] * noise[j];
      x[r * dim + i] = v;
    }
  }
  return { x, rows, dim, y, wordIds: new Int32Array(rows).fill(-1) };
}

export function unit(dim: number, entries: Record<number, number>): number[] {
  const v = new Array<number>(dim).fill(0);
  for (const [i, a] of Object.entries(entries)) v[Number(i)] = a;
  const n = Math.hypot(...v);
  return v.map((a) => a / n);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
