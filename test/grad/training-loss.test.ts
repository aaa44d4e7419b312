// The losses of the training graph: softmax cross-entropy exactly like
// F.cross_entropy(..., ignore_index=-100) (checked against a JS computation),
// an all-ignored batch giving 0, the fused gradient checked by finite
// differences, argmax accuracy counts, and MSE.
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/onnx/graph';
import { Emitter } from '../../src/grad/emit';
import { buildLoss, LossKind } from '../../src/grad/losses';
import { F, I64, makeModel, randn, rng, session, valueInfo } from '../helpers/build';

async function lossSession(kind: LossKind, rank: number, weight: number, numClasses?: number) {
  const logitDims = rank === 3 ? ['b', 't', 'c'] : ['b', 'c'];
  const model = makeModel({
    nodes: [],
    inputs: [valueInfo('logits', F, logitDims), kind === 'ce' ? valueInfo('labels', I64, logitDims.slice(0, -1)) : valueInfo('labels', F, logitDims)],
    outputs: [],
    opset: 17,
  });
  const graph = new Graph(model.graph!);
  const emit = new Emitter(graph, 'loss.h');
  const names = { loss: 'loss.h', correct: kind === 'ce' ? 'correct.h' : undefined, count: kind === 'ce' ? 'count.h' : undefined };
  const t = buildLoss(emit, { head: 'h', kind, output: 'logits', labels: 'labels', weight, numClasses }, names);
  model.graph!.node = emit.nodes;
  model.graph!.initializer = emit.initializers;
  model.graph!.output = [t.loss, t.seed, ...(t.correct ? [t.correct, t.count!] : [])].map((o) => valueInfo(o, F));
  new Graph(model.graph!).validate();
  for (const n of emit.nodes) expect(n.domain ?? '').toBe('');
  const s = await session(model);
  const run = async (logits: Float32Array, dims: number[], labels: number[]) => {
    const ldims = kind === 'ce' ? dims.slice(0, -1) : dims;
    const lab = kind === 'ce' ? new ort.Tensor('int64', BigInt64Array.from(labels, (v) => BigInt(v)), ldims) : new ort.Tensor('float32', Float32Array.from(labels), ldims);
    const out = await s.run({ logits: new ort.Tensor('float32', logits, dims), labels: lab });
    return {
      loss: (out[t.loss].data as Float32Array)[0],
      seed: out[t.seed].data as Float32Array,
      correct: t.correct ? (out[t.correct].data as Float32Array)[0] : undefined,
      count: t.count ? (out[t.count].data as Float32Array)[0] : undefined,
    };
  };
  return run;
}

/** F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1), ignore_index=-100), in float64. */
function referenceCE(logits: Float32Array, C: number, labels: number[]): number {
  let sum = 0;
  let n = 0;
  labels.forEach((y, r) => {
    if (y === -100) return;
    const row = Array.from(logits.subarray(r * C, r * C + C));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    sum += lse - row[y];
    n++;
  });
  return n ? sum / n : NaN;
}

describe('softmax cross-entropy', () => {
  const rand = rng(7);

  it('matches F.cross_entropy with ignore_index=-100 at token level [B, T, C]', async () => {
    const run = await lossSession('ce', 3, 1);
    const logits = randn(rand, 2 * 3 * 5, 2);
    const labels = [4, -100, 0, 2, 2, -100];
    const r = await run(logits, [2, 3, 5], labels);
    expect(r.loss).toBeCloseTo(referenceCE(logits, 5, labels), 5);
    expect(r.count).toBe(4);
    const argmax = labels.map((_, k) => { const row = Array.from(logits.subarray(k * 5, k * 5 + 5)); return row.indexOf(Math.max(...row)); });
    expect(r.correct).toBe(labels.filter((y, k) => y !== -100 && argmax[k] === y).length);
    // Ignored positions get exactly zero gradient.
    for (const k of [1, 5]) for (let c = 0; c < 5; c++) expect(Math.abs(r.seed[k * 5 + c])).toBe(0);
  });

  it('matches at sequence level [B, C] with a static class count', async () => {
    const run = await lossSession('ce', 2, 1, 4);
    const logits = randn(rand, 3 * 4, 3);
    const labels = [3, 0, -100];
    const r = await run(logits, [3, 4], labels);
    expect(r.loss).toBeCloseTo(referenceCE(logits, 4, labels), 5);
    expect(r.count).toBe(2);
  });

  it('gives loss 0 and gradient 0, not NaN, when every label is ignored', async () => {
    const run = await lossSession('ce', 3, 0.5);
    const r = await run(randn(rand, 2 * 2 * 3), [2, 2, 3], [-100, -100, -100, -100]);
    expect(r.loss).toBe(0);
    expect(r.count).toBe(0);
    expect(r.correct).toBe(0);
    expect(Array.from(r.seed).every((v) => v === 0)).toBe(true);
  });

  it('fused gradient (softmax − onehot)·mask/count·weight matches finite differences of weight·loss', async () => {
    const weight = 0.7;
    const run = await lossSession('ce', 3, weight);
    const dims = [2, 4, 6];
    const n = 2 * 4 * 6;
    const logits = randn(rand, n, 1.5);
    const labels = [5, 0, -100, 3, 1, -100, 2, 4];
    const { seed, loss } = await run(logits, dims, labels);
    const u = randn(rand, n);
    const eps = 1e-2;
    const shifted = async (s: number) => (await run(logits.map((v, k) => v + s * u[k]), dims, labels)).loss;
    const numeric = (weight * ((await shifted(eps)) - (await shifted(-eps)))) / (2 * eps);
    const analytic = seed.reduce((a, g, k) => a + g * u[k], 0);
    expect(Math.abs(analytic - numeric)).toBeLessThan(2e-3 * Math.max(Math.abs(analytic), 1e-2));
    expect(loss).toBeCloseTo(referenceCE(logits, 6, labels), 5);
    // Each non-ignored row of softmax − onehot sums to 0.
    for (let r = 0; r < 8; r++) expect(Math.abs(seed.subarray(r * 6, r * 6 + 6).reduce((a, v) => a + v, 0))).toBeLessThan(1e-6);
  });
});

describe('mean squared error', () => {
  it('is mean((y − t)²) with gradient 2·(y − t)/N·weight', async () => {
    const run = await lossSession('mse', 2, 2);
    const y = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const t = [1.5, 2, 2, 4, -1, 6];
    const r = await run(y, [3, 2], t);
    const d = Array.from(y, (v, k) => v - t[k]);
    expect(r.loss).toBeCloseTo(d.reduce((a, v) => a + v * v, 0) / 6, 6);
    Array.from(r.seed).forEach((g, k) => expect(g).toBeCloseTo((2 * 2 * d[k]) / 6, 6));
  });
});
