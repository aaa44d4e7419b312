// Concept erasure, linear-algebra helpers over ml-matrix: the decompositions
// (symmetric EVD, SVD) come from the library; this file only converts between
// our row-major Float64Arrays and ml-matrix's Matrix and applies thresholds.
import { EigenvalueDecomposition, Matrix, SingularValueDecomposition } from 'ml-matrix';

export function toMatrix(a: ArrayLike<number>, rows: number, cols: number): Matrix {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) m.set(i, j, a[i * cols + j]);
  return m;
}

export function fromMatrix(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows * m.columns);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.columns; j++) out[i * m.columns + j] = m.get(i, j);
  return out;
}

/**
 * Whitening W = Σ^{+1/2} and un-whitening W⁻ = Σ^{1/2} of a symmetric PSD matrix, from its
 * eigendecomposition. Eigenvalues at or below λ_max · d · ε (torch.linalg.pinv's threshold,
 * as leace.py uses) count as zero, so a rank-deficient Σ gets its pseudo-inverse square root.
 */
export function whitening(sigma: Matrix): { w: Matrix; wInv: Matrix; rank: number } {
  const evd = new EigenvalueDecomposition(sigma, { assumeSymmetric: true });
  const lambda = evd.realEigenvalues;
  const vecs = evd.eigenvectorMatrix;
  const d = sigma.rows;
  const max = Math.max(0, ...lambda);
  const tol = max * d * Number.EPSILON;
  // W = V diag(λ^{-1/2}) Vᵀ and W⁻ = V diag(λ^{1/2}) Vᵀ over the kept eigenvalues.
  const va = new Matrix(d, d);
  const vb = new Matrix(d, d);
  let rank = 0;
  for (let k = 0; k < d; k++) {
    const l = lambda[k];
    if (!(l > tol)) continue;
    rank++;
    const a = 1 / Math.sqrt(l);
    const b = Math.sqrt(l);
    for (let i = 0; i < d; i++) {
      va.set(i, k, vecs.get(i, k) * a);
      vb.set(i, k, vecs.get(i, k) * b);
    }
  }
  const vt = vecs.transpose();
  return { w: va.mmul(vt), wInv: vb.mmul(vt), rank };
}

/** Left singular vectors of `m` whose singular value passes `keep`, as the columns of a matrix, and all singular values. */
export function leftSingular(m: Matrix, keep: (s: number, max: number) => boolean): { basis: Matrix; singular: number[] } {
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  const s = svd.diagonal;
  const uAll = svd.leftSingularVectors;
  const max = Math.max(0, ...s);
  const cols: number[] = [];
  s.forEach((v, k) => {
    if (keep(v, max)) cols.push(k);
  });
  const basis = new Matrix(m.rows, cols.length);
  cols.forEach((k, c) => {
    for (let i = 0; i < m.rows; i++) basis.set(i, c, uAll.get(i, k));
  });
  return { basis, singular: s };
}

/** Orthonormal basis of the column space of `m` (singular values above max · rtol), like scipy.linalg.orth. */
export function orth(m: Matrix, rtol = 1e-4): Matrix {
  return leftSingular(m, (s, max) => max > 0 && s > max * rtol).basis;
}
