// Concept erasure, streamed statistics: running means of the encodings x and of
// the one-hot labels z, the unnormalised covariance Σ(x−x̄)(x−x̄)ᵀ and the
// cross-covariance Σ(x−x̄)(z−z̄)ᵀ, in float64 with Welford's update (as
// EleutherAI's LeaceFitter.update), so features can arrive in batches and only
// d×d + d×C numbers are kept.
import { GrlError } from '../onnx/errors';

export class MomentStats {
  n = 0;
  readonly meanX: Float64Array;
  readonly meanZ: Float64Array;
  /** Unnormalised Σ (x−x̄)(x−x̄)ᵀ, row-major [dim, dim]. */
  readonly sxx: Float64Array;
  /** Unnormalised Σ (x−x̄)(z−z̄)ᵀ, row-major [dim, classes]. */
  readonly sxz: Float64Array;
  readonly classCounts: number[];
  private readonly dx: Float64Array;
  private readonly dx2: Float64Array;

  constructor(readonly dim: number, readonly classes: number) {
    if (!(dim > 0) || !(classes > 0)) throw new GrlError(`statistics need dim > 0 and classes > 0 (got ${dim}, ${classes})`);
    this.meanX = new Float64Array(dim);
    this.meanZ = new Float64Array(classes);
    this.sxx = new Float64Array(dim * dim);
    this.sxz = new Float64Array(dim * classes);
    this.classCounts = new Array<number>(classes).fill(0);
    this.dx = new Float64Array(dim);
    this.dx2 = new Float64Array(dim);
  }

  /** Add rows of row-major [rows, dim] features with one class id per row. */
  update(x: ArrayLike<number>, y: ArrayLike<number>, rows = y.length): this {
    const d = this.dim;
    const C = this.classes;
    if (x.length !== rows * d) throw new GrlError(`statistics: ${x.length} values is not rows × dim = ${rows} × ${d}`);
    const { dx, dx2, meanX, meanZ, sxx, sxz } = this;
    for (let r = 0; r < rows; r++) {
      const c = y[r];
      if (!(c >= 0 && c < C && Number.isInteger(c))) throw new GrlError(`statistics: label ${c} of row ${r} is outside [0, ${C})`);
      this.n++;
      const inv = 1 / this.n;
      const o = r * d;
      for (let i = 0; i < d; i++) {
        dx[i] = x[o + i] - meanX[i];
        meanX[i] += dx[i] * inv;
        dx2[i] = x[o + i] - meanX[i];
      }
      // Welford: Σ += (x − x̄_old)(x − x̄_new)ᵀ, and likewise for the cross term with z.
      for (let i = 0; i < d; i++) {
        const a = dx[i];
        if (a === 0) continue;
        const row = i * d;
        for (let j = 0; j < d; j++) sxx[row + j] += a * dx2[j];
      }
      for (let k = 0; k < C; k++) meanZ[k] += ((k === c ? 1 : 0) - meanZ[k]) * inv;
      for (let i = 0; i < d; i++) {
        const a = dx[i];
        if (a === 0) continue;
        for (let k = 0; k < C; k++) sxz[i * C + k] += a * ((k === c ? 1 : 0) - meanZ[k]);
      }
      this.classCounts[c]++;
    }
    return this;
  }

  /** Covariance of x with Bessel's correction, symmetrised against accumulated rounding. */
  covariance(): Float64Array {
    this.needRows();
    const d = this.dim;
    const out = new Float64Array(d * d);
    const s = 1 / (this.n - 1);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i * d + j] = ((this.sxx[i * d + j] + this.sxx[j * d + i]) / 2) * s;
    return out;
  }

  /** Cross-covariance of x with the one-hot labels, [dim, classes]. */
  crossCovariance(): Float64Array {
    this.needRows();
    const s = 1 / (this.n - 1);
    return Float64Array.from(this.sxz, (v) => v * s);
  }

  private needRows(): void {
    if (this.n < 2) throw new GrlError(`statistics: need at least 2 rows, got ${this.n}`);
  }
}
