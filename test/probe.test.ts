// Probe training (src/probe/probe.ts) on hand-checkable features, through the
// real TrainingSession in onnxruntime-node.
import { buildProbeModel, runProbe, scorePredictions, trainProbe } from '../src/probe/probe';
import { controlTask, majorityBaseline } from '../src/probe/baselines';
import type { Features } from '../src/probe/features';
import { Rng } from '../src/data/jsonl';

/** Class c sits around a one-hot-ish centre 4·e_c plus noise: linearly separable. */
function separable(rows: number, dim: number, classes: number, seed: number): Features {
  const rng = new Rng(seed);
  const x = new Float32Array(rows * dim);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = Math.floor(rng.next() * classes);
    y[r] = c;
    for (let d = 0; d < dim; d++) x[r * dim + d] = (d === c ? 4 : 0) + (rng.next() - 0.5);
  }
  return { x, rows, dim, y, wordIds: Int32Array.from(y) };
}

/** Gaussian-ish features with labels independent of them, skewed 70/20/10. */
function noise(rows: number, dim: number, seed: number): Features {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: rows * dim }, () => rng.next() * 2 - 1);
  const y = Int32Array.from({ length: rows }, () => {
    const u = rng.next();
    return u < 0.7 ? 0 : u < 0.9 ? 1 : 2;
  });
  return { x, rows, dim, y, wordIds: Int32Array.from({ length: rows }, (_, i) => i % 50) };
}

describe('probe', () => {
  test('builds a linear and an mlp probe graph with the expected parameters', () => {
    const lin = buildProbeModel(8, 3, { seed: 1 });
    expect(lin.proto.graph?.initializer?.map((t) => [t.name, t.dims])).toEqual([['probe.weight', [8, 3]], ['probe.bias', [3]]]);
    const mlp = buildProbeModel(8, 3, { kind: 'mlp', hidden: 64, seed: 1 });
    expect(mlp.proto.graph?.node?.map((n) => n.op_type)).toEqual(['MatMul', 'Add', 'Relu', 'MatMul', 'Add']);
    expect(mlp.proto.graph?.initializer?.map((t) => t.dims)).toEqual([[8, 64], [64], [64, 3], [3]]);
  });

  test('linearly separable features give ~100% held-out accuracy (linear and mlp)', async () => {
    const train = separable(600, 6, 4, 1);
    const test = separable(300, 6, 4, 2);
    for (const kind of ['linear', 'mlp'] as const) {
      const r = await trainProbe(train, test, { numClasses: 4, kind, hidden: 64, epochs: 8, batchSize: 32, lr: 1e-2, seed: 3 });
      expect(r.accuracy).toBeGreaterThanOrEqual(0.99);
      expect(r.rows).toBe(300);
      expect(r.epochLoss[r.epochLoss.length - 1]).toBeLessThan(r.epochLoss[0]);
    }
  });

  test('labels unrelated to the features give about the majority baseline', async () => {
    const train = noise(1500, 8, 4);
    const test = noise(1000, 8, 5);
    const r = await runProbe(train, test, { numClasses: 3, epochs: 15, batchSize: 64, lr: 1e-2, seed: 0 });
    const maj = majorityBaseline(train.y, test.y, 3);
    expect(maj.label).toBe(0);
    expect(r.majority).toEqual(maj);
    expect(Math.abs(r.accuracy - maj.accuracy)).toBeLessThan(0.03);
  });

  test('is deterministic for a seed', async () => {
    const train = noise(400, 5, 7);
    const test = noise(200, 5, 8);
    const a = await trainProbe(train, test, { numClasses: 3, epochs: 2, batchSize: 50, seed: 9 });
    const b = await trainProbe(train, test, { numClasses: 3, epochs: 2, batchSize: 50, seed: 9 });
    expect(b.epochLoss).toEqual(a.epochLoss);
    expect(b.accuracy).toBe(a.accuracy);
  });

  test('control task: selectivity is task minus control, and a word-identity-only signal has none', async () => {
    // Features encode the word type (one-hot of wordId % 6); the task label is a function of the type too,
    // so both task and control are learnable from identity alone.
    const mk = (rows: number, seed: number): Features => {
      const rng = new Rng(seed);
      const dim = 6;
      const x = new Float32Array(rows * dim);
      const w = new Int32Array(rows);
      const y = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        w[r] = Math.floor(rng.next() * 6);
        x[r * dim + w[r]] = 3;
        y[r] = w[r] % 2;
      }
      return { x, rows, dim, y, wordIds: w };
    };
    const r = await runProbe(mk(800, 1), mk(400, 2), { numClasses: 2, control: true, epochs: 6, batchSize: 32, lr: 1e-2, seed: 4 });
    expect(r.accuracy).toBe(1);
    expect(r.control?.accuracy).toBe(1);
    expect(r.selectivity).toBe(0);
  });

  test('scorePredictions: accuracy, macro-F1 and non-majority accuracy by hand', () => {
    // gold 0 0 0 1 2, pred 0 0 1 1 0: acc 3/5; F1(0)=2·2/(3+3)=2/3, F1(1)=2·1/(1+2)=2/3, F1(2)=0 → macro 4/9.
    const s = scorePredictions([0, 0, 0, 1, 2], [0, 0, 1, 1, 0], 3, 0);
    expect(s.accuracy).toBeCloseTo(0.6, 12);
    expect(s.macroF1).toBeCloseTo(4 / 9, 12);
    expect(s.nonMajorityAccuracy).toBeCloseTo(0.5, 12);
  });
});

describe('control task construction', () => {
  test('each word type gets one fixed label, types unseen in train included, seeded', () => {
    const train = [1, 2, 3, 1, 2, 3, 4, 4];
    const test = [9, 1, 9, 2];
    const y = [0, 1, 1, 0, 1, 1, 2, 2];
    const a = controlTask([train, test], y, 3, 5);
    const b = controlTask([train, test], y, 3, 5);
    expect([...a.map.entries()]).toEqual([...b.map.entries()]);
    expect([...a.map.keys()]).toEqual([1, 2, 3, 4, 9]);
    const [ct, ce] = a.labels;
    train.forEach((w, i) => expect(ct[i]).toBe(a.map.get(w)));
    test.forEach((w, i) => expect(ce[i]).toBe(a.map.get(w)));
    expect(ce[0]).toBe(ce[2]);
  });

  test('the per-type labels follow the task label distribution', () => {
    // 3000 types, labels 60/30/10: the fraction of types per control label is close to that.
    const ids = Array.from({ length: 3000 }, (_, i) => i);
    const y = ids.map((i) => (i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2));
    const { map } = controlTask([ids], y, 3, 1);
    const counts = [0, 0, 0];
    for (const v of map.values()) counts[v]++;
    expect(counts[0] / 3000).toBeCloseTo(0.6, 1);
    expect(counts[1] / 3000).toBeCloseTo(0.3, 1);
    expect(counts[2] / 3000).toBeCloseTo(0.1, 1);
    expect(Math.abs(counts[2] / 3000 - 0.1)).toBeLessThan(0.02);
  });
});
