// Concept erasure, LEACE (Belrose et al. 2023, "LEACE: Perfect linear concept
// erasure in closed form"), after EleutherAI concept-erasure's LeaceFitter:
//   W = Σxx^{+1/2} (whitening), U = left singular vectors of W Σxz with σ > svdTol,
//   proj_left = W⁺ U, proj_right = Uᵀ W, and x ↦ x − (x − x̄) proj_rightᵀ proj_leftᵀ.
// In our eraser's terms (x ↦ x − ((x − b) U') V'ᵀ): U' = proj_rightᵀ = W U,
// V' = proj_left = W⁺ U, b = x̄. After it, the cross-covariance of x with the
// one-hot labels is zero, i.e. the class-conditional means are all equal.
// Not ported: upstream's Ledoit–Wolf-style shrinkage of Σxx and the trace constraint
// (constrain_cov_trace); we report the covariance trace before and after instead.
import type { Matrix } from 'ml-matrix';
import { GrlError } from '../onnx/errors';
import { Eraser, makeEraser } from './eraser';
import { MomentStats } from './stats';
import { fromMatrix, leftSingular, toMatrix, whitening } from './linalg';

export interface LeaceOptions {
  /**
   * Singular values of the whitened cross-covariance at or below this are dropped (upstream
   * default 0.01; ours is smaller so rare classes keep their direction).
   */
  svdTol?: number;
}

export const DEFAULT_LEACE_SVD_TOL = 1e-4;

export interface LeaceStats {
  rows: number;
  classes: number;
  classCounts: number[];
  /** Rank of Σxx after the pseudo-inverse threshold. */
  covarianceRank: number;
  /** Singular values of the whitened cross-covariance W Σxz, largest first. */
  singularValues: number[];
  svdTol: number;
  /** tr Σxx before and tr(Pᵀ Σxx P) after erasure: how much variance the eraser moved. */
  traceBefore: number;
  traceAfter: number;
}

export class LeaceFitter {
  readonly stats: MomentStats;
  constructor(readonly dim: number, readonly classes: number, readonly opts: LeaceOptions = {}) {
    this.stats = new MomentStats(dim, classes);
  }

  update(x: ArrayLike<number>, y: ArrayLike<number>, rows = y.length): this {
    this.stats.update(x, y, rows);
    return this;
  }

  /** The eraser for the statistics so far, and what it was computed from. */
  fit(): { eraser: Eraser; stats: LeaceStats } {
    const { dim: d, classes: C, stats } = this;
    const svdTol = this.opts.svdTol ?? DEFAULT_LEACE_SVD_TOL;
    if (!(svdTol > 0)) throw new GrlError(`LEACE: svdTol must be positive, got ${svdTol}`);
    const sigma = toMatrix(stats.covariance(), d, d);
    const { w, wInv, rank: covarianceRank } = whitening(sigma);
    const wsxz = w.mmul(toMatrix(stats.crossCovariance(), d, C));
    const { basis: u, singular } = leftSingular(wsxz, (s) => s > svdTol);
    const left = wInv.mmul(u); // proj_left, [d, k]
    const rightT = w.mmul(u); // proj_rightᵀ, [d, k] (W is symmetric)
    const eraser = makeEraser('leace', d, fromMatrix(rightT), fromMatrix(left), Float64Array.from(stats.meanX));
    return {
      eraser,
      stats: {
        rows: stats.n, classes: C, classCounts: [...stats.classCounts], covarianceRank,
        singularValues: [...singular].sort((a, b) => b - a), svdTol,
        traceBefore: sigma.trace(), traceAfter: traceAfter(sigma, rightT, left),
      },
    };
  }
}

/** tr(Pᵀ Σ P) for P = I − R Lᵀ (row-vector convention: erased covariance). */
function traceAfter(sigma: Matrix, r: Matrix, l: Matrix): number {
  // Pᵀ Σ P = Σ − L Rᵀ Σ − Σ R Lᵀ + L Rᵀ Σ R Lᵀ; traces via tr(AB) = tr(BA) keep it k × k.
  const sr = sigma.mmul(r); // [d, k]
  const ltl = l.transpose().mmul(l); // [k, k]
  const rsr = r.transpose().mmul(sr); // [k, k]
  const lsr = l.transpose().mmul(sr); // [k, k]: tr(Σ R Lᵀ) = tr(Lᵀ Σ R)
  return sigma.trace() - 2 * lsr.trace() + rsr.mmul(ltl).trace();
}

/** LEACE on a whole feature set at once. */
export function fitLeace(x: ArrayLike<number>, y: ArrayLike<number>, dim: number, classes: number, opts: LeaceOptions = {}): { eraser: Eraser; stats: LeaceStats } {
  return new LeaceFitter(dim, classes, opts).update(x, y).fit();
}
