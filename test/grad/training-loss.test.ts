// The losses of the training graph: softmax cross-entropy exactly like
// F.cross_entropy(..., ignore_index=-100) (checked against a JS computation),
// an all-ignored batch giving 0, the fused gradient checked by finite
// differences, argmax accuracy counts, and MSE with NaN = ignore (against a
// JS F.mse_loss(pred[mask], label[mask]), finite differences, an all-NaN batch,
// and bit-for-bit today's unmasked graph when no label is NaN).
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/onnx/graph';
import { Emitter } from '../../src/grad/emit';
import { buildLoss, LossKind } from '../../src/grad/losses';
import { A, makeAttrs } from '../../src/onnx/attrs';
import { makeTensor } from '../../src/onnx/tensor';
import { DataType } from '../../src/onnx/proto';
import { F, I64, makeModel, randn, rng, session, valueInfo } from '../helpers/build';

async function lossSession(kind: LossKind, rank: number, weight: number, numClasses?: number, opset = 17) {
  const logitDims = rank === 3 ? ['b', 't', 'c'] : ['b', 'c'];
  const model = makeModel({
    nodes: [],
    inputs: [valueInfo('logits', F, logitDims), kind === 'ce' ? valueInfo('labels', I64, logitDims.slice(0, -1)) : valueInfo('labels', F, logitDims)],
    outputs: [],
    opset,
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

/** F.mse_loss(pred[mask], label[mask]) with mask = ~isnan(label), in float64 (NaN when nothing is left, like PyTorch). */
function referenceMSE(pred: Float32Array, labels: number[]): { loss: number; n: number } {
  let sum = 0;
  let n = 0;
  labels.forEach((t, k) => {
    if (Number.isNaN(t)) return;
    sum += (pred[k] - t) ** 2;
    n++;
  });
  return { loss: sum / n, n };
}

/** The MSE graph before NaN labels were ignored (F.mse_loss over every element), to check the masked one against bit for bit. */
async function unmaskedMseSession(weight: number) {
  const c = (name: string, v: number) => makeTensor(name, DataType.FLOAT, [], Float32Array.of(v));
  const node = (op: string, input: string[], output: string, attrs?: Parameters<typeof makeAttrs>[0]) => ({ name: output, op_type: op, input, output: [output], attribute: makeAttrs(attrs) });
  const model = makeModel({
    nodes: [
      node('Sub', ['y', 't'], 'diff'),
      node('Size', ['y'], 'size'),
      node('Cast', ['size'], 'n', { to: A.int(DataType.FLOAT) }),
      node('Max', ['n', 'one'], 'denom'),
      node('Mul', ['diff', 'diff'], 'sq'),
      node('ReduceSum', ['sq'], 'sse', { keepdims: A.int(0) }),
      node('Div', ['sse', 'denom'], 'loss'),
      node('Div', ['two_weight', 'denom'], 'scale'),
      node('Mul', ['diff', 'scale'], 'seed'),
    ],
    inputs: [valueInfo('y', F, ['b', 't', 'k']), valueInfo('t', F, ['b', 't', 'k'])],
    outputs: [valueInfo('loss', F), valueInfo('seed', F)],
    initializers: [c('one', 1), c('two_weight', 2 * weight)],
  });
  const s = await session(model);
  return async (y: Float32Array, dims: number[], t: Float32Array) => {
    const out = await s.run({ y: new ort.Tensor('float32', y, dims), t: new ort.Tensor('float32', t, dims) });
    return { loss: out.loss.data as Float32Array, seed: out.seed.data as Float32Array };
  };
}

describe('mean squared error', () => {
  const rand = rng(11);

  it('is mean((y − t)²) with gradient 2·(y − t)/N·weight', async () => {
    const run = await lossSession('mse', 2, 2);
    const y = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const t = [1.5, 2, 2, 4, -1, 6];
    const r = await run(y, [3, 2], t);
    const d = Array.from(y, (v, k) => v - t[k]);
    expect(r.loss).toBeCloseTo(d.reduce((a, v) => a + v * v, 0) / 6, 6);
    Array.from(r.seed).forEach((g, k) => expect(g).toBeCloseTo((2 * 2 * d[k]) / 6, 6));
  });

  it('ignores NaN labels: 2 of 6 ignored gives mean over the other 4, gradient 0 at the ignored ones', async () => {
    const run = await lossSession('mse', 2, 1);
    const r = await run(Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2], [0, NaN, 3, 2, NaN, 8]);
    // (1 + 0 + 4 + 4) / 4, seeds 2·(y − t)/4.
    expect(r.loss).toBe(2.25);
    expect(Array.from(r.seed)).toEqual([0.5, 0, 0, 1, 0, -1]);
  });

  for (const opset of [16, 20]) {
    it(`matches F.mse_loss(pred[mask], label[mask]) on random [B, T, K] with NaN labels (opset ${opset}), with a finite-difference gradient`, async () => {
      const weight = 0.6;
      const run = await lossSession('mse', 3, weight, undefined, opset);
      const dims = [3, 5, 4];
      const n = 3 * 5 * 4;
      const y = randn(rand, n);
      // Whole padded tokens (all K), and scattered single values.
      const labels = Array.from(randn(rand, n), (v, k) => (Math.floor(k / 4) % 5 >= 3 || k % 7 === 2 ? NaN : v));
      const ref = referenceMSE(y, labels);
      expect(ref.n).toBeGreaterThan(20);
      expect(ref.n).toBeLessThan(n - 20);
      const r = await run(y, dims, labels);
      expect(Math.abs(r.loss - ref.loss)).toBeLessThan(1e-6 * ref.loss);
      labels.forEach((t, k) => {
        if (Number.isNaN(t)) expect(r.seed[k]).toBe(0);
        else expect(Math.abs(r.seed[k] - (2 * weight * (y[k] - t)) / ref.n)).toBeLessThan(1e-6);
      });
      // ⟨seed, u⟩ = weight · d/ds loss(y + s·u), the direction touching ignored elements too.
      const u = randn(rand, n);
      const eps = 1e-2;
      const at = async (s: number) => (await run(y.map((v, k) => v + s * u[k]), dims, labels)).loss;
      const numeric = (weight * ((await at(eps)) - (await at(-eps)))) / (2 * eps);
      const analytic = r.seed.reduce((a, g, k) => a + g * u[k], 0);
      expect(Math.abs(analytic - numeric)).toBeLessThan(2e-3 * Math.max(Math.abs(analytic), 1e-2));
    });
  }

  it('a NaN prediction where the label is ignored leaves the loss and gradient finite', async () => {
    const run = await lossSession('mse', 2, 1);
    const r = await run(Float32Array.from([NaN, 2, 3, Infinity]), [2, 2], [NaN, 1, 1, NaN]);
    expect(r.loss).toBe(2.5);
    expect(Array.from(r.seed)).toEqual([0, 1, 2, 0]);
  });

  it('gives loss 0 and gradient 0, not NaN, when every label is NaN', async () => {
    const run = await lossSession('mse', 3, 0.5);
    const r = await run(randn(rand, 2 * 3 * 2), [2, 3, 2], Array(12).fill(NaN));
    expect(r.loss).toBe(0);
    expect(r.seed).toHaveLength(12);
    for (const g of r.seed) expect(g === 0).toBe(true);
  });

  it('with no NaN label, loss and gradient are bit for bit those of the unmasked F.mse_loss graph', async () => {
    const weight = 0.3;
    const run = await lossSession('mse', 3, weight);
    const old = await unmaskedMseSession(weight);
    // Many shapes: a reordered formula (e.g. sse·(1/n)) differs from sse/n in the last bit only now and then.
    const shapes = [[1, 1, 1], [4, 33, 9], ...Array.from({ length: 30 }, () => [1 + Math.floor(rand() * 4), 1 + Math.floor(rand() * 20), 1 + Math.floor(rand() * 9)])];
    for (const dims of shapes) {
      const n = dims[0] * dims[1] * dims[2];
      const y = randn(rand, n, 3);
      const t = randn(rand, n, 2);
      const r = await run(y, dims, Array.from(t));
      const o = await old(y, dims, t);
      expect(r.loss).toBeGreaterThan(0);
      expect(Buffer.from(Float32Array.of(r.loss).buffer).equals(Buffer.from(o.loss.buffer))).toBe(true);
      expect(Buffer.from(r.seed.buffer, r.seed.byteOffset, r.seed.byteLength).equals(Buffer.from(o.seed.buffer, o.seed.byteOffset, o.seed.byteLength))).toBe(true);
    }
  });
});
