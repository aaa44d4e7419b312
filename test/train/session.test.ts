// TrainingSession on the hand-built GRL model of linear-grl.ts: artifacts written
// with writeArtifacts, every step checked against a plain float64 forward/backward
// and plain AdamW/SGD written in this file.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Model, loadModel, serializeModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { writeArtifacts } from '../../src/train/artifacts';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { OptimizerKind } from '../../src/train/optimizer';
import { TrainingSession, TrainingSessionCreateOptions } from '../../src/train/session';
import { KernelArena } from '../../src/train/kernels/wasm';
import { F, makeModel, randn, rng, valueInfo } from '../helpers/build';
import { C, D, H, Weights, inferenceModel, initialWeights, referenceGrads, trainingGraphFor } from './linear-grl';

type Feeds = Record<string, ort.Tensor>;

function batch(seed: number, labels: number[]): { x: Float32Array; labels: number[]; feeds: Feeds } {
  const x = randn(rng(seed), labels.length * D);
  return { x, labels, feeds: { x: new ort.Tensor('float32', x, [labels.length, D]), adv: new ort.Tensor('int64', BigInt64Array.from(labels, BigInt), [labels.length]) } };
}

function concat(a: ReturnType<typeof batch>, b: ReturnType<typeof batch>) {
  const x = new Float32Array(a.x.length + b.x.length);
  x.set(a.x);
  x.set(b.x, a.x.length);
  const labels = [...a.labels, ...b.labels];
  return { x, labels, feeds: { x: new ort.Tensor('float32', x, [labels.length, D]), adv: new ort.Tensor('int64', BigInt64Array.from(labels, BigInt), [labels.length]) } };
}

const w0 = initialWeights();
const original: Model = { proto: inferenceModel(w0), source: 'linear-grl.onnx', unknownFields: [] };
const dirs: string[] = [];

function artifacts(optimizer: OptimizerKind, learningRate: number, hyperparameters = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-session-'));
  dirs.push(dir);
  writeArtifacts(original, trainingGraphFor(w0), { optimizer, learningRate, hyperparameters }, dir);
  return dir;
}

afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

/** E, W, b of a session as float64 arrays (layout order E, W, b). */
async function weightsOf(s: TrainingSession): Promise<{ E: number[]; W: number[]; b: number[] }> {
  const p = Array.from((await s.getContiguousParameters(true)).data as Float32Array);
  return { E: p.slice(0, D * H), W: p.slice(D * H, D * H + H * C), b: p.slice(D * H + H * C) };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what = ''): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  if (!(worst <= tol)) throw new Error(`${what}: max |got - want| = ${worst} > ${tol}`);
}

/**
 * Two sessions trained differently end within `tol` of each other (and, when `moved`, away from
 * the initial weights, so the comparison is not of two untouched models); both are released.
 */
async function expectSameWeights(a: TrainingSession, b: TrainingSession, what: string, moved = true): Promise<void> {
  const wa = await weightsOf(a);
  const wb = await weightsOf(b);
  expectClose([...wa.E, ...wa.W, ...wa.b], [...wb.E, ...wb.W, ...wb.b], 1e-6, what);
  if (moved) expect([...wa.E, ...wa.W, ...wa.b]).not.toEqual([...w0.E, ...w0.W, ...w0.b]);
  await a.release();
  await b.release();
}

const full = (w: { E: ArrayLike<number>; W: ArrayLike<number>; b: ArrayLike<number> }): Weights & Record<string, ArrayLike<number>> => ({ ...w0, E: Float32Array.from(w.E), W: Float32Array.from(w.W), b: Float32Array.from(w.b) });

describe.each([['js'], ['onnx']] as const)('TrainingSession (optimizer backend %s)', (backend) => {
  const open = (x: string | TrainingSessionCreateOptions) => TrainingSession.create(typeof x === 'string' ? { artifactsDir: x, optimizerBackend: backend } : { ...x, optimizerBackend: backend });

  it('opens an artifacts folder with ORT\'s names and layout', async () => {
    const s = await open(artifacts('adamw', 1e-3));
    expect(s.trainingInputNames).toEqual(['x', 'adv']);
    expect(s.trainingOutputNames).toEqual(['loss', 'loss.adv', 'correct.adv', 'count.adv']);
    expect(s.evalInputNames).toEqual(['x', 'adv']);
    expect(s.evalOutputNames).toEqual(['loss', 'loss.adv', 'correct.adv', 'count.adv']);
    expect(s.getLambdas()).toEqual({ adv: 0.5 });
    expect(s.updateKernel).toBe(backend === 'js' ? 'wasm-simd' : 'onnx');
    expect(s.getParametersSize(true)).toBe(D * H + H * C + C);
    expect(s.getParametersSize(false)).toBe(D * H + H * C + C + H);
    expect(s.parameterLayout.map((p) => [p.name, p.offset, p.size])).toEqual([['E', 0, 12], ['W', 12, 12], ['b', 24, 3]]);
    const all = Array.from((await s.getContiguousParameters(false)).data as Float32Array);
    expect(all).toEqual([...w0.E, ...w0.W, ...w0.b, ...w0.c]);
    await s.release();
  });

  it('one SGD step with lr = 1 is θ − ∇θ, with the loss of the reference', async () => {
    const s = await open(artifacts('sgd', 1));
    const b = batch(3, [0, 2, -100, 1, 1]);
    const out = await s.runTrainStep(b.feeds);
    const ref = referenceGrads(w0, b.x, b.labels, 0.5);
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.loss, 5);
    expect((out['count.adv'].data as Float32Array)[0]).toBe(4);
    await s.runOptimizerStep();
    const w = await weightsOf(s);
    expectClose(w.E, Array.from(w0.E, (v, i) => v - ref.E[i]), 1e-6, 'E');
    expectClose(w.W, Array.from(w0.W, (v, i) => v - ref.W[i]), 1e-6, 'W');
    expectClose(w.b, Array.from(w0.b, (v, i) => v - ref.b[i]), 1e-6, 'b');
    expect(s.optimizerStep).toBe(1);
    await s.release();
  });

  it('release frees onnxruntime only: the trained weights still export and checkpoint, steps refuse with one line', async () => {
    const s = await open(artifacts('sgd', 1));
    const b = batch(3, [0, 2, -100, 1, 1]);
    await s.runTrainStep(b.feeds);
    await s.runOptimizerStep();
    const trained = await weightsOf(s);
    await s.release();
    await s.release();
    expect(await weightsOf(s)).toEqual(trained);
    expect(s.checkpointState().trainable.map((t) => t.name)).toEqual(['E', 'W', 'b']);
    await expect(s.runTrainStep(b.feeds)).rejects.toThrow('runTrainStep: this TrainingSession was released');
    await expect(s.runEvalStep(b.feeds)).rejects.toThrow('runEvalStep: this TrainingSession was released');
  });

  it('accumulates gradients over 2 micro-batches like one batch of twice the size', async () => {
    const b1 = batch(11, [0, 1, 2]);
    const b2 = batch(12, [2, 2, 0]);
    const micro = await open(artifacts('sgd', 1));
    await micro.runTrainStep(b1.feeds);
    await micro.runTrainStep(b2.feeds);
    await micro.runOptimizerStep();
    // Mean losses: g1 + g2 over two halves = 2 · g of the joined batch, hence lr 2 here.
    const whole = await open(artifacts('sgd', 2));
    await whole.runTrainStep(concat(b1, b2).feeds);
    await whole.runOptimizerStep();
    await expectSameWeights(micro, whole, 'accumulated vs joined');
  });

  it('lazyResetGrad makes the next step overwrite the gradients', async () => {
    const b1 = batch(21, [0, 1, 2]);
    const b2 = batch(22, [1, 0, 2]);
    const s = await open(artifacts('sgd', 1));
    await s.runTrainStep(b1.feeds);
    await s.lazyResetGrad();
    await s.runTrainStep(b2.feeds);
    await s.runOptimizerStep();
    const ref = referenceGrads(w0, b2.x, b2.labels, 0.5);
    const w = await weightsOf(s);
    expectClose(w.W, Array.from(w0.W, (v, i) => v - ref.W[i]), 1e-6, 'W');
    await s.release();
  });

  it('AdamW for 3 steps matches a plain AdamW on reference gradients', async () => {
    const lr = 0.05;
    const h = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
    const s = await open(artifacts('adamw', lr, h));
    const batches = [batch(31, [0, 1, 2, -100]), batch(32, [2, 1]), batch(33, [1, 1, 0])];
    const p: Record<'E' | 'W' | 'b', number[]> = { E: Array.from(w0.E), W: Array.from(w0.W), b: Array.from(w0.b) };
    const m = { E: p.E.map(() => 0), W: p.W.map(() => 0), b: p.b.map(() => 0) };
    const v = { E: p.E.map(() => 0), W: p.W.map(() => 0), b: p.b.map(() => 0) };
    for (const [k, b] of batches.entries()) {
      await s.runTrainStep(b.feeds);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
      const g = referenceGrads(full(p), b.x, b.labels, 0.5);
      const t = k + 1;
      for (const name of ['E', 'W', 'b'] as const) {
        for (let i = 0; i < p[name].length; i++) {
          p[name][i] *= 1 - lr * h.weightDecay;
          m[name][i] = h.beta1 * m[name][i] + (1 - h.beta1) * g[name][i];
          v[name][i] = h.beta2 * v[name][i] + (1 - h.beta2) * g[name][i] ** 2;
          const denom = Math.sqrt(v[name][i]) / Math.sqrt(1 - h.beta2 ** t) + h.eps;
          p[name][i] -= (lr / (1 - h.beta1 ** t)) * (m[name][i] / denom);
        }
      }
    }
    const w = await weightsOf(s);
    expectClose([...w.E, ...w.W, ...w.b], [...p.E, ...p.W, ...p.b], 1e-5, 'after 3 AdamW steps');
    await s.release();
  });

  it('λ control: λ = 0 leaves the encoder alone, λ flips and scales its gradient', async () => {
    const b = batch(41, [0, 1, 2, 1]);
    const deltaE = async (lambda: number) => {
      const s = await open(artifacts('sgd', 1));
      s.setLambda('adv', lambda);
      expect(s.getLambdas()).toEqual({ adv: Math.fround(lambda) });
      await s.runTrainStep(b.feeds);
      await s.runOptimizerStep();
      const w = await weightsOf(s);
      await s.release();
      return w.E.map((e, i) => e - w0.E[i]);
    };
    expect(await deltaE(0)).toEqual(new Array(D * H).fill(0));
    const one = await deltaE(1);
    const two = await deltaE(2);
    expectClose(two, one.map((d) => 2 * d), 1e-6, 'λ = 2 vs 1');
    const ref = referenceGrads(w0, b.x, b.labels, 1);
    expectClose(one, Array.from(ref.E, (g) => -g), 1e-6, 'λ = 1');
    const s = await open(artifacts('sgd', 1));
    expect(() => s.setLambda('pos', 1)).toThrow("no gradient-reversal head 'pos' in the training model (heads: adv)");
    await s.release();
  });

  it('a λ schedule drives λ from the optimizer step', async () => {
    const s = await open(artifacts('sgd', 0.1));
    s.registerLambdaScheduler({ kind: 'linear', warmup: 2 }, 10, { adv: 0.8 });
    const b = batch(42, [0, 1]);
    const seen: number[] = [];
    for (let k = 0; k < 3; k++) {
      await s.runTrainStep(b.feeds);
      seen.push(s.getLambdas().adv);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    expect(seen).toEqual([0, Math.fround(0.4), Math.fround(0.8)]);
    await s.release();
  });

  it('a learning-rate schedule sets the rate of each optimizer step', async () => {
    const s = await open(artifacts('sgd', 0.2));
    s.registerLearningRateScheduler({ kind: 'linear', warmup: 0, totalSteps: 4 });
    const rates: number[] = [];
    for (let k = 0; k < 4; k++) {
      rates.push(s.getLearningRate());
      await s.runTrainStep(batch(43, [0]).feeds);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    expect(rates).toEqual([0.2 * 1, 0.2 * 0.75, 0.2 * 0.5, 0.2 * 0.25]);
    s.setLearningRate(1);
    expect(s.getLearningRate()).toBe(0);
    await s.release();
  });

  it('save → create from the checkpoint gives identical parameters, state and next step', async () => {
    const dir = artifacts('adamw', 0.05, { maxGradNorm: 0.5 });
    const a = await open(dir);
    const batches = [batch(51, [0, 1, 2]), batch(52, [2, 0, 1]), batch(53, [1, 1, 0])];
    a.setLambda('adv', 0.75);
    a.setHyperparameters({ weightDecay: 0.2 });
    a.properties.ints['data.offset'] = 17;
    a.properties.strings['note'] = 'resume me';
    for (const b of batches.slice(0, 2)) {
      await a.runTrainStep(b.feeds);
      await a.runOptimizerStep();
      await a.lazyResetGrad();
    }
    const ckpt = path.join(dir, 'resume.ckpt');
    await a.saveCheckpoint(ckpt);
    const stored = loadCheckpoint(ckpt);
    expect(stored.optimizerGroups[0].step).toBe(2);
    expect(stored.optimizerGroups[0].states[0].momentums.map((m) => m.name)).toEqual(['momentum0', 'momentum1']);
    expect(stored.properties.floats['grl.adv.lambda']).toBe(0.75);

    const b = await open({ artifactsDir: dir, checkpointState: ckpt });
    expect(Array.from((await b.getContiguousParameters(false)).data as Float32Array)).toEqual(Array.from((await a.getContiguousParameters(false)).data as Float32Array));
    expect(b.optimizerStep).toBe(2);
    expect(b.getLambdas()).toEqual({ adv: 0.75 });
    expect(b.getHyperparameters()).toEqual(a.getHyperparameters());
    expect(b.getLearningRate()).toBe(0.05);
    expect(b.properties.ints['data.offset']).toBe(17);
    expect(b.properties.strings['note']).toBe('resume me');
    for (const s of [a, b]) {
      await s.runTrainStep(batches[2].feeds);
      await s.runOptimizerStep();
    }
    expect(Array.from((await b.getContiguousParameters()).data as Float32Array)).toEqual(Array.from((await a.getContiguousParameters()).data as Float32Array));
    expect(b.lastGradientNorm).toBe(a.lastGradientNorm);
    await a.release();
    await b.release();
  });

  it('exportModelForInferencing keeps the graph, the GRL node and the initializer names, with trained weights', async () => {
    const dir = artifacts('sgd', 1);
    const s = await open(dir);
    await s.runTrainStep(batch(61, [0, 1, 2]).feeds);
    await s.runOptimizerStep();
    const out = path.join(dir, 'trained.onnx');
    await s.exportModelForInferencing(out);
    const m = loadModel(out);
    expect((m.proto.graph?.initializer ?? []).map((t) => t.name)).toEqual(['E', 'c', 'W', 'b']);
    expect((m.proto.graph?.node ?? []).map((n) => n.op_type)).toEqual(['MatMul', 'Add', 'GradientReversal', 'MatMul', 'Add']);
    const w = await weightsOf(s);
    const inits = new Map((m.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', Array.from(tensorToFloat32(t))]));
    expect(inits.get('E')).toEqual(w.E);
    expect(inits.get('b')).toEqual(w.b);
    expect(inits.get('c')).toEqual(Array.from(w0.c));
    // Runs in stock ORT: the GRL is its Identity function body at inference.
    const x = randn(rng(62), 2 * D);
    const ortSession = await ort.InferenceSession.create(out);
    const logits = Array.from((await ortSession.run({ x: new ort.Tensor('float32', x, [2, D]) })).logits.data as Float32Array);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) {
      const h = Array.from({ length: H }, (_, j) => w0.c[j] + Array.from({ length: D }, (_, k) => x[i * D + k] * w.E[k * H + j]).reduce((a, v) => a + v, 0));
      for (let c = 0; c < C; c++) want.push(w.b[c] + h.reduce((a, hv, j) => a + hv * w.W[j * C + c], 0));
    }
    expectClose(logits, want, 1e-5, 'logits');
    await ortSession.release();
    await s.release();
  });

  it('runEvalStep computes the loss at the current parameters, and loadParametersBuffer replaces them', async () => {
    const s = await open(artifacts('sgd', 1));
    const b = batch(71, [2, 0, -100]);
    const before = await s.runEvalStep(b.feeds);
    expect((before['loss.adv'].data as Float32Array)[0]).toBeCloseTo(referenceGrads(w0, b.x, b.labels, 0.5).loss, 5);
    const w1 = { E: randn(rng(72), D * H), W: randn(rng(73), H * C), b: randn(rng(74), C) };
    const flat = Float32Array.from([...w1.E, ...w1.W, ...w1.b]);
    await s.loadParametersBuffer(new Uint8Array(flat.buffer), true);
    const after = await s.runEvalStep(b.feeds);
    expect((after['loss.adv'].data as Float32Array)[0]).toBeCloseTo(referenceGrads(full(w1), b.x, b.labels, 0.5).loss, 5);
    await expect(s.loadParametersBuffer(new Float32Array(5))).rejects.toThrow('loadParametersBuffer: got 5 floats, the session has 27');
    const withFrozen = Float32Array.from([...flat, ...w0.c]);
    await s.loadParametersBuffer(withFrozen, false);
    withFrozen[withFrozen.length - 1] += 1;
    await expect(s.loadParametersBuffer(withFrozen, false)).rejects.toThrow("frozen parameter 'c' differs");
    await s.release();
  });

  it('refuses a checkpoint whose parameters the training model does not take', async () => {
    const dir = artifacts('sgd', 1);
    const bad = makeModel({ nodes: [{ op_type: 'Identity', input: ['x'], output: ['y'] }], inputs: [valueInfo('x', F, [1])], outputs: [valueInfo('y', F, [1])] });
    await expect(open({ artifactsDir: dir, trainModel: serializeModel(bad) })).rejects.toThrow("training model has no input for trainable parameter 'E' listed in the checkpoint");
    await expect(open(path.join(dir, 'nope'))).rejects.toThrow('not a grl-onnx artifacts folder (no checkpoint)');
  });
});

describe('onnxruntime-node 1.30 output binding (what the session relies on)', () => {
  const model = makeModel({
    nodes: [
      { op_type: 'Mul', input: ['x', 'x'], output: ['y'] },
      { op_type: 'Sub', input: ['y', 'y'], output: ['zero'] },
      { op_type: 'Add', input: ['x', 'zero'], output: ['z'] },
    ],
    inputs: [valueInfo('x', F, ['n'])],
    outputs: [valueInfo('y', F, ['n']), valueInfo('z', F, ['n'])],
  });

  it('writes a pre-allocated output straight into its buffer, and returns a separate copy', async () => {
    const s = await ort.InferenceSession.create(serializeModel(model), { graphOptimizationLevel: 'disabled' });
    const big = new Float32Array(8);
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3), [3]) }, { y: new ort.Tensor('float32', big.subarray(2, 5), [3]), z: null });
    expect(Array.from(big)).toEqual([0, 0, 1, 4, 9, 0, 0, 0]);
    // The returned tensor is a copy, not a view of our buffer (a native copy per fetched output).
    expect(r.y.data).not.toBe(big);
    big[2] = 99;
    expect((r.y.data as Float32Array)[0]).toBe(1);
    await s.release();
  });

  it('writes it while the graph runs (an output aliasing an input is visible to later nodes)', async () => {
    // z = x + (y − y) is computed after y; when y is bound to x's buffer, z reads the new x.
    const s = await ort.InferenceSession.create(serializeModel(model), { graphOptimizationLevel: 'disabled' });
    const x = Float32Array.of(1, 2, 3);
    const xt = new ort.Tensor('float32', x, [3]);
    const r = await s.run({ x: xt }, { y: new ort.Tensor('float32', x, [3]), z: null });
    expect(Array.from(x)).toEqual([1, 4, 9]);
    expect(Array.from(r.z.data as Float32Array)).toEqual([1, 4, 9]);
    await s.release();
  });
});


describe('TrainingSession when its buffers do not fit a wasm memory (plain arrays, JS update)', () => {
  afterEach(() => jest.restoreAllMocks());
  const plain = async (dir: string) => {
    jest.spyOn(KernelArena, 'create').mockReturnValue(undefined);
    const s = await TrainingSession.create({ artifactsDir: dir });
    jest.restoreAllMocks();
    return s;
  };

  it('one SGD step with lr = 1 is θ − ∇θ, and accumulation adds micro-batches in JS', async () => {
    const s = await plain(artifacts('sgd', 1));
    expect(s.updateKernel).toBe('js');
    const b = batch(3, [0, 2, -100, 1, 1]);
    await s.runTrainStep(b.feeds);
    await s.runOptimizerStep();
    const ref = referenceGrads(w0, b.x, b.labels, 0.5);
    const w = await weightsOf(s);
    expectClose(w.E, Array.from(w0.E, (v, i) => v - ref.E[i]), 1e-6, 'E');
    expectClose(w.b, Array.from(w0.b, (v, i) => v - ref.b[i]), 1e-6, 'b');
    await s.release();

    const b1 = batch(11, [0, 1, 2]);
    const b2 = batch(12, [2, 2, 0]);
    const micro = await plain(artifacts('sgd', 1));
    await micro.runTrainStep(b1.feeds);
    await micro.runTrainStep(b2.feeds);
    await micro.runOptimizerStep();
    const whole = await TrainingSession.create({ artifactsDir: artifacts('sgd', 2) });
    expect(whole.updateKernel).toBe('wasm-simd');
    await whole.runTrainStep(concat(b1, b2).feeds);
    await whole.runOptimizerStep();
    await expectSameWeights(micro, whole, 'accumulated (JS) vs joined (wasm)', false);
  });

  it('AdamW for 3 steps agrees with the wasm session within float32 rounding', async () => {
    const dir = artifacts('adamw', 0.05, { weightDecay: 0.1, maxGradNorm: 0.5 });
    const js = await plain(dir);
    const simd = await TrainingSession.create({ artifactsDir: dir });
    expect([js.updateKernel, simd.updateKernel]).toEqual(['js', 'wasm-simd']);
    for (let k = 0; k < 3; k++) {
      const b = batch(40 + k, [0, 1, 2, 1]);
      for (const s of [js, simd]) {
        await s.runTrainStep(b.feeds);
        await s.runOptimizerStep();
        await s.lazyResetGrad();
      }
    }
    await expectSameWeights(js, simd, 'js vs wasm AdamW');
  });
});
