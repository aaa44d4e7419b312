// INLP on synthetic features whose concept lives in two known directions: it reaches
// the majority baseline within its iterations, and what it removes covers those
// directions. Random erasure removes exactly K orthonormal directions, seeded.
import { Matrix } from 'ml-matrix';
import { fitInlp } from '../../src/erase/inlp';
import { randomEraser } from '../../src/erase/random';
import { applyEraser, denseEraser } from '../../src/erase/eraser';
import { fitEraser } from '../../src/erase/fit';
import { trainProbe } from '../../src/probe/probe';
import { majorityBaseline } from '../../src/probe/baselines';
import { maxAbsDiff, synthetic, unit } from './helpers';

const DIM = 10;
const C = 3;
const known = [unit(DIM, { 0: 1 }), unit(DIM, { 1: 1 }), unit(DIM, { 0: -1, 1: -1 })];
// Isotropic noise: the best classifier's directions are then the class-mean directions.
const f = synthetic(900, DIM, known, [0.5, 0.3, 0.2], 11, 4, 0);
const majority = majorityBaseline(f.y, f.y, C).accuracy;

/** |P v| for a unit vector v: 0 when v was removed, 1 when untouched. */
function residual(p: Float64Array, v: number[]): number {
  const out = new Array<number>(DIM).fill(0);
  for (let i = 0; i < DIM; i++) for (let j = 0; j < DIM; j++) out[j] += v[i] * p[i * DIM + j];
  return Math.hypot(...out);
}

describe('INLP', () => {
  let result: Awaited<ReturnType<typeof fitInlp>>;
  beforeAll(async () => {
    result = await fitInlp(f.x, f.y, DIM, { numClasses: C, iterations: 6, seed: 1 });
  });

  test('the first classifier learns (sanity) and a later one is at majority within the iterations', () => {
    const its = result.iterations;
    expect(its[0].accuracy).toBeGreaterThan(its[0].majority + 0.3);
    expect(result.stopped).toBe('majority');
    const last = its[its.length - 1];
    expect(last.accuracy).toBeLessThanOrEqual(last.majority + result.tolerance);
    expect(last.added).toBe(0);
    expect(its.length).toBeLessThanOrEqual(6);
    // Each classifier on 3 classes, zero-initialised, has rank ≤ 2.
    for (const it of its) expect(it.added).toBeLessThanOrEqual(C - 1);
    expect(result.eraser.rank).toBe(its[its.length - 1].rank);
  });

  test('the removed subspace covers the two known directions, and P is an orthogonal projection', () => {
    const { p, c } = denseEraser(result.eraser);
    expect(c).toBeUndefined();
    expect(residual(p, unit(DIM, { 0: 1 }))).toBeLessThan(0.05);
    expect(residual(p, unit(DIM, { 1: 1 }))).toBeLessThan(0.05);
    const pm = new Matrix(DIM, DIM);
    for (let i = 0; i < DIM; i++) for (let j = 0; j < DIM; j++) pm.set(i, j, p[i * DIM + j]);
    expect(maxAbsDiff(pm.to1DArray(), pm.transpose().to1DArray())).toBeLessThan(1e-12);
    expect(maxAbsDiff(pm.mmul(pm).to1DArray(), pm.to1DArray())).toBeLessThan(1e-12);
    expect(pm.trace()).toBeCloseTo(DIM - result.eraser.rank, 9);
  });

  test('a fresh probe on the INLP-erased rows is at majority (≤ majority + 2 pp)', async () => {
    const erased = applyEraser(result.eraser, f.x, f.rows);
    const r = await trainProbe({ ...f, x: erased }, { ...f, x: erased }, { numClasses: C, epochs: 20, lr: 3e-2, batchSize: 64, seed: 5 });
    expect(r.accuracy).toBeLessThanOrEqual(majority + 0.02);
  });

  test('the classifier is a parameter: a stub that is at majority at once removes nothing', async () => {
    const r = await fitInlp(f.x, f.y, DIM, { numClasses: C, classifier: async () => ({ weight: new Float32Array(DIM * C), accuracy: 0 }) });
    expect(r.stopped).toBe('majority');
    expect(r.eraser.rank).toBe(0);
    expect(r.iterations).toEqual([{ iteration: 1, accuracy: 0, majority: expect.any(Number), added: 0, rank: 0 }]);
  });
});

describe('random erasure', () => {
  test('removes exactly K orthonormal directions', () => {
    const e = randomEraser(DIM, 4, 3);
    expect(e.rank).toBe(4);
    const u = new Matrix(DIM, 4);
    for (let i = 0; i < DIM; i++) for (let r = 0; r < 4; r++) u.set(i, r, e.u[i * 4 + r]);
    expect(maxAbsDiff(u.transpose().mmul(u).to1DArray(), Matrix.eye(4).to1DArray())).toBeLessThan(1e-12);
    const { p } = denseEraser(e);
    let trace = 0;
    for (let i = 0; i < DIM; i++) trace += p[i * DIM + i];
    expect(trace).toBeCloseTo(DIM - 4, 10);
    // Every removed direction maps to 0; every direction orthogonal to them is kept.
    for (let r = 0; r < 4; r++) expect(residual(p, Array.from({ length: DIM }, (_, i) => e.u[i * 4 + r]))).toBeLessThan(1e-12);
  });

  test('is seeded: same seed, same directions; another seed, others', () => {
    expect(maxAbsDiff(randomEraser(DIM, 3, 9).u, randomEraser(DIM, 3, 9).u)).toBe(0);
    expect(maxAbsDiff(randomEraser(DIM, 3, 9).u, randomEraser(DIM, 3, 10).u)).toBeGreaterThan(0.01);
  });

  test('without a rank it takes INLP\'s', async () => {
    const r = await fitEraser(f, { method: 'random', iterations: 6, seed: 1 });
    expect(r.eraser.method).toBe('random');
    expect(r.eraser.rank).toBe(r.inlp?.eraser.rank);
    expect(r.eraser.rank).toBeGreaterThanOrEqual(2);
  });

  test('rejects a rank outside [1, dim]; rank dim removes the whole space (INLP can get there)', () => {
    expect(() => randomEraser(DIM, 0)).toThrow('random erasure: rank must be an integer in [1, 10] for dim 10, got 0');
    expect(() => randomEraser(DIM, DIM + 1)).toThrow(/got 11$/);
    const all = randomEraser(DIM, DIM, 3);
    expect(all.rank).toBe(DIM);
    const x = Float32Array.from({ length: 3 * DIM }, (_, i) => Math.sin(i + 1));
    for (const v of applyEraser(all, x, 3)) expect(Math.abs(v)).toBeLessThan(1e-5);
  });
});

describe('fitEraser input checks', () => {
  test('a label with one class', async () => {
    await expect(fitEraser({ ...f, y: new Int32Array(f.rows).fill(2) }, { method: 'leace', what: 'x.jsonl, label pos' })).rejects.toThrow('x.jsonl, label pos: the label has one class (every row is class 2); there is nothing to erase');
  });
  test('too few examples', async () => {
    const g = { ...f, rows: 4, x: f.x.slice(0, 4 * DIM), y: f.y.slice(0, 4) };
    await expect(fitEraser(g, { method: 'leace' })).rejects.toThrow('features: too few examples: 4 labelled rows, need at least 10');
  });
  test('--rank with a method that finds its own', async () => {
    await expect(fitEraser(f, { method: 'leace', rank: 3 })).rejects.toThrow('--rank applies to --method random (leace finds its own rank)');
  });
});
