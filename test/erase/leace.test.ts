// LEACE's guarantees (after EleutherAI concept-erasure's test_leace.py), on synthetic
// features with known concept directions: equal class-conditional means, no linear
// classifier above the majority class (a closed-form least-squares one and the
// project's own trained probe), idempotence, unchanged mean, rank ≤ classes − 1, and
// the sanity check that the same classifiers do learn before erasure.
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { LeaceFitter, fitLeace } from '../../src/erase/leace';
import { applyEraser, denseEraser } from '../../src/erase/eraser';
import { trainProbe } from '../../src/probe/probe';
import { majorityBaseline } from '../../src/probe/baselines';
import { classMeans, leastSquaresProbe, maxAbsDiff, maxMeanGap, synthetic, unit } from './helpers';

const DIM = 8;
const C = 3;
const PRIORS = [0.5, 0.3, 0.2];
const dirs = [unit(DIM, { 0: 1 }), unit(DIM, { 1: 1, 2: 1 }), unit(DIM, { 3: -1, 0: 1 })];
const f = synthetic(800, DIM, dirs, PRIORS, 7);
const { eraser, stats } = fitLeace(f.x, f.y, DIM, C);
const erased = applyEraser(eraser, f.x, f.rows);
const majority = majorityBaseline(f.y, f.y, C).accuracy;

/** Features are O(1)–O(5); float32 rounding of the erased rows sets this tolerance. */
const TOL = 1e-4;

describe('LEACE on synthetic features with known directions', () => {
  test('the concept is there before erasure: class means differ, least squares beats majority', () => {
    expect(maxMeanGap(f.x, f.y, DIM, C)).toBeGreaterThan(1);
    const ls = leastSquaresProbe(f.x, f.y, DIM, C);
    expect(ls.coefNorm).toBeGreaterThan(0.1);
    expect(ls.accuracy).toBeGreaterThan(majority + 0.2);
  });

  test('after erasure the class-conditional means are equal (max gap < 1e-4)', () => {
    expect(maxMeanGap(erased, f.y, DIM, C)).toBeLessThan(TOL);
  });

  test('the unconditional mean is unchanged', () => {
    expect(maxAbsDiff(classMeans(erased, f.y, DIM, C).all, classMeans(f.x, f.y, DIM, C).all)).toBeLessThan(TOL);
  });

  test('least squares on the erased rows: coefficients ~0 and no better than majority', () => {
    const ls = leastSquaresProbe(erased, f.y, DIM, C);
    expect(ls.coefNorm).toBeLessThan(1e-3);
    expect(ls.accuracy).toBeLessThanOrEqual(majority + 1e-9);
  });

  test('the eraser is idempotent', () => {
    const twice = applyEraser(eraser, erased, f.rows);
    expect(maxAbsDiff(twice, erased)).toBeLessThan(TOL);
  });

  test('the change has rank ≤ classes − 1 (one-hot labels sum to one)', () => {
    expect(eraser.rank).toBe(C - 1);
    const { p } = denseEraser(eraser);
    const change = new Matrix(DIM, DIM);
    for (let i = 0; i < DIM; i++) for (let j = 0; j < DIM; j++) change.set(i, j, (i === j ? 1 : 0) - p[i * DIM + j]);
    const s = new SingularValueDecomposition(change).diagonal;
    expect(s.filter((v) => v > 1e-8).length).toBe(C - 1);
    expect(stats.singularValues.filter((v) => v > stats.svdTol).length).toBe(C - 1);
    expect(stats.covarianceRank).toBe(DIM);
  });

  test('the project\'s probe learns the concept before erasure and not after (≤ majority + 1 pp on the fit rows)', async () => {
    const opts = { numClasses: C, epochs: 30, lr: 3e-2, batchSize: 64, seed: 3 };
    const before = await trainProbe(f, f, opts);
    expect(before.accuracy).toBeGreaterThan(majority + 0.2);
    const after = await trainProbe({ ...f, x: erased }, { ...f, x: erased }, opts);
    expect(after.accuracy).toBeLessThanOrEqual(majority + 0.01);
  });

  test('streaming the rows in batches gives the same eraser as one update', () => {
    const fitter = new LeaceFitter(DIM, C);
    for (let s = 0; s < f.rows; s += 97) {
      const e = Math.min(f.rows, s + 97);
      fitter.update(f.x.subarray(s * DIM, e * DIM), f.y.subarray(s, e));
    }
    const streamed = denseEraser(fitter.fit().eraser);
    const whole = denseEraser(eraser);
    expect(maxAbsDiff(streamed.p, whole.p)).toBeLessThan(1e-9);
    expect(maxAbsDiff(streamed.c as Float64Array, whole.c as Float64Array)).toBeLessThan(1e-9);
  });

  test('a rank-deficient covariance (a constant feature) still erases', () => {
    const g = { ...f, x: Float32Array.from(f.x, (v, k) => (k % DIM === 5 ? 2 : v)) };
    const r = fitLeace(g.x, g.y, DIM, C);
    expect(r.stats.covarianceRank).toBe(DIM - 1);
    expect(maxMeanGap(applyEraser(r.eraser, g.x, g.rows), g.y, DIM, C)).toBeLessThan(TOL);
  });
});
