// The flat optimizer models run in onnxruntime-node against PyTorch
// (test/fixtures/optimizer-ref.json, from scripts/optimizer_reference.py) and
// against plain float64 reimplementations of torch.optim.AdamW / SGD written here.
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { serializeModel } from '../../src/onnx/io';
import {
  HYPERPARAMETER_INPUTS, OPTIMIZER_STATES, OptimizerHyperparameters, OptimizerKind,
  buildOptimizerModel, checkInPlaceSafe, defaultHyperparameters, fusedOptimizerStep, inPlacePairs,
} from '../../src/train/optimizer';

interface RefStep { params: number[]; grad_norm: number; state: Record<string, number[]> }
interface RefCase { name: string; optimizer: OptimizerKind; hyper: Record<string, number>; max_grad_norm: number; steps: RefStep[] }
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'optimizer-ref.json'), 'utf8')) as { params: number[]; grads: number[][]; cases: RefCase[] };

interface Step { params: Float32Array; states: Float32Array[]; norm: number }

/** Run `grads.length` optimizer steps; with `inPlace`, every output is bound to its input's buffer. */
async function runSteps(kind: OptimizerKind, lr: number, h: OptimizerHyperparameters, p0: ArrayLike<number>, grads: ArrayLike<number>[], inPlace = false): Promise<Step[]> {
  const session = await ort.InferenceSession.create(serializeModel(buildOptimizerModel(kind)));
  const n = p0.length;
  let params = Float32Array.from(p0);
  let states = OPTIMIZER_STATES[kind].map(() => new Float32Array(n));
  const out: Step[] = [];
  for (let t = 1; t <= grads.length; t++) {
    const feeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.of(lr), []),
      step: new ort.Tensor('int64', BigInt64Array.of(BigInt(t)), []),
      params: new ort.Tensor('float32', params, [n]),
      gradients: new ort.Tensor('float32', Float32Array.from(grads[t - 1]), [n]),
    };
    OPTIMIZER_STATES[kind].forEach((s, k) => { feeds[s] = new ort.Tensor('float32', states[k], [n]); });
    for (const [input, field] of HYPERPARAMETER_INPUTS[kind]) feeds[input] = new ort.Tensor('float32', Float32Array.of(h[field]), []);
    if (inPlace) {
      const fetches: Record<string, ort.Tensor | null> = { grad_norm: null };
      for (const [i, o] of inPlacePairs(kind)) fetches[o] = feeds[i];
      const r = await session.run(feeds, fetches);
      out.push({ params: params.slice(), states: states.map((s) => s.slice()), norm: (r.grad_norm.data as Float32Array)[0] });
    } else {
      const r = await session.run(feeds);
      params = r.params_out.data as Float32Array;
      states = OPTIMIZER_STATES[kind].map((s) => r[`${s}_out`].data as Float32Array);
      out.push({ params, states, norm: (r.grad_norm.data as Float32Array)[0] });
    }
  }
  await session.release();
  return out;
}

function hyperOf(c: RefCase): OptimizerHyperparameters {
  return {
    ...defaultHyperparameters(c.optimizer),
    beta1: c.hyper.beta1 ?? 0.9,
    beta2: c.hyper.beta2 ?? 0.999,
    eps: c.hyper.eps ?? 1e-8,
    weightDecay: c.hyper.weight_decay,
    momentum: c.hyper.momentum ?? 0,
    maxGradNorm: c.max_grad_norm,
  };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  if (!(worst <= tol)) throw new Error(`${what}: max |got - want| = ${worst} > ${tol}`);
}

/** torch.nn.utils.clip_grad_norm_ on one flat gradient, in float64. */
function clip(g: number[], maxNorm: number): { g: number[]; norm: number } {
  const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
  if (maxNorm <= 0) return { g, norm };
  const coef = Math.min(maxNorm / (norm + 1e-6), 1);
  return { g: g.map((v) => v * coef), norm };
}

/** torch.optim.AdamW, written out plainly (float64). */
function adamwReference(lr: number, h: OptimizerHyperparameters, p0: number[], grads: number[][]): number[][] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const history: number[][] = [];
  grads.forEach((raw, k) => {
    const t = k + 1;
    const { g } = clip(raw, h.maxGradNorm);
    const bc1 = 1 - h.beta1 ** t;
    const bc2 = 1 - h.beta2 ** t;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * h.weightDecay;
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
      p[i] -= (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps));
    }
    history.push([...p]);
  });
  return history;
}

/** torch.optim.SGD (dampening 0, no nesterov), written out plainly (float64). */
function sgdReference(lr: number, h: OptimizerHyperparameters, p0: number[], grads: number[][]): number[][] {
  const p = [...p0];
  let buf: number[] | undefined;
  const history: number[][] = [];
  for (const raw of grads) {
    const { g } = clip(raw, h.maxGradNorm);
    const d = g.map((gi, i) => gi + h.weightDecay * p[i]);
    let step = d;
    if (h.momentum !== 0) {
      buf = buf ? buf.map((b, i) => h.momentum * b + d[i]) : [...d];
      step = buf;
    }
    for (let i = 0; i < p.length; i++) p[i] -= lr * step[i];
    history.push([...p]);
  }
  return history;
}

describe('optimizer models against PyTorch (optimizer-ref.json)', () => {
  it.each(ref.cases.map((c) => [c.name, c]))('%s: 3 steps', async (_name, c) => {
    const steps = await runSteps(c.optimizer, c.hyper.lr, hyperOf(c), ref.params, ref.grads);
    steps.forEach((s, k) => {
      const r = c.steps[k];
      expectClose(s.params, r.params, 2e-6, `${c.name} step ${k + 1} params`);
      expect(s.norm).toBeCloseTo(r.grad_norm, 5);
      OPTIMIZER_STATES[c.optimizer].forEach((name, j) => {
        if (r.state[name]) expectClose(s.states[j], r.state[name], 2e-6, `${c.name} step ${k + 1} ${name}`);
      });
    });
  });

  it('the fixture exercises clipping, weight decay and momentum (it is not a trivial case)', () => {
    const byName = new Map(ref.cases.map((c) => [c.name, c]));
    expect(byName.get('adamw_clip')!.steps[0].grad_norm).toBeGreaterThan(byName.get('adamw_clip')!.max_grad_norm);
    expect(byName.get('sgd_momentum_wd')!.steps[1].state.momentum_buffer).toBeDefined();
  });
});

describe('optimizer models against plain reimplementations', () => {
  const p0 = ref.params;
  const grads = ref.grads;

  it.each([
    ['AdamW', { weightDecay: 0.01, maxGradNorm: 0 }, 1e-2],
    ['AdamW, wd 0.1, clip 1.0', { weightDecay: 0.1, maxGradNorm: 1.0 }, 5e-2],
  ] as const)('%s for 3 steps', async (_n, over, lr) => {
    const h = { ...defaultHyperparameters('adamw'), ...over };
    const steps = await runSteps('adamw', lr, h, p0, grads);
    const want = adamwReference(lr, h, p0, grads);
    steps.forEach((s, k) => expectClose(s.params, want[k], 2e-6, `step ${k + 1}`));
  });

  it.each([
    ['plain', { momentum: 0, weightDecay: 0, maxGradNorm: 0 }],
    ['momentum 0.9', { momentum: 0.9, weightDecay: 0, maxGradNorm: 0 }],
    ['momentum 0.9 + weight decay 0.05', { momentum: 0.9, weightDecay: 0.05, maxGradNorm: 0 }],
    ['weight decay without momentum', { momentum: 0, weightDecay: 0.05, maxGradNorm: 0 }],
    ['clipping at 0.5', { momentum: 0, weightDecay: 0, maxGradNorm: 0.5 }],
  ] as const)('SGD %s for 3 steps', async (_n, over) => {
    const h = { ...defaultHyperparameters('sgd'), ...over };
    const steps = await runSteps('sgd', 0.1, h, p0, grads);
    const want = sgdReference(0.1, h, p0, grads);
    steps.forEach((s, k) => expectClose(s.params, want[k], 2e-6, `step ${k + 1}`));
  });

  it('one SGD step with lr = 1 is exactly θ − ∇θ (float32)', async () => {
    const [s] = await runSteps('sgd', 1, defaultHyperparameters('sgd'), p0, [grads[0]]);
    expect(Array.from(s.params)).toEqual(p0.map((p, i) => Math.fround(Math.fround(p) - Math.fround(grads[0][i]))));
  });

  it('clipping scales by max_norm/(norm+1e-6) only when that is below 1, and reports the pre-clip norm', async () => {
    const norm = Math.sqrt(grads[0].reduce((a, v) => a + v * v, 0));
    const clipped = await runSteps('sgd', 1, { ...defaultHyperparameters('sgd'), maxGradNorm: 0.5 }, p0, [grads[0]]);
    const coef = 0.5 / (norm + 1e-6);
    expectClose(clipped[0].params, p0.map((p, i) => p - coef * grads[0][i]), 1e-6, 'clipped');
    expect(clipped[0].norm).toBeCloseTo(norm, 5);
    // A max norm above the gradient norm leaves the step exact.
    const loose = await runSteps('sgd', 1, { ...defaultHyperparameters('sgd'), maxGradNorm: norm * 2 }, p0, [grads[0]]);
    expect(Array.from(loose[0].params)).toEqual(p0.map((p, i) => Math.fround(Math.fround(p) - Math.fround(grads[0][i]))));
  });
});

describe('in-place updates', () => {
  it.each([['adamw'], ['sgd']] as const)('%s: every input is read before its output is written', (kind) => {
    expect(() => checkInPlaceSafe(buildOptimizerModel(kind), inPlacePairs(kind))).not.toThrow();
  });

  it('checkInPlaceSafe rejects a model that reads an input after writing its output', () => {
    const m = buildOptimizerModel('sgd');
    // An extra reader of `params` that does not feed params_out.
    m.graph!.node!.push({ name: 'late', op_type: 'Identity', input: ['params'], output: ['late_params'] });
    expect(() => checkInPlaceSafe(m, inPlacePairs('sgd'), 'x.onnx')).toThrow("x.onnx: node late reads 'params' but does not run before 'params_out' is written; it cannot be updated in place");
  });

  it.each([['adamw'], ['sgd']] as const)('%s gives the same results with outputs bound to the input buffers', async (kind) => {
    const h = { ...defaultHyperparameters(kind), momentum: 0.9, maxGradNorm: 1 };
    const copied = await runSteps(kind, 0.05, h, ref.params, ref.grads);
    const inPlace = await runSteps(kind, 0.05, h, ref.params, ref.grads, true);
    inPlace.forEach((s, k) => {
      expect(Array.from(s.params)).toEqual(Array.from(copied[k].params));
      s.states.forEach((st, j) => expect(Array.from(st)).toEqual(Array.from(copied[k].states[j])));
    });
  });
});

describe('fused JS update (the session\'s default backend)', () => {
  function fused(kind: OptimizerKind, lr: number, h: OptimizerHyperparameters, p0: number[], grads: number[][]): Step[] {
    const params = Float32Array.from(p0);
    const states = OPTIMIZER_STATES[kind].map(() => new Float32Array(p0.length));
    return grads.map((g, k) => {
      const norm = fusedOptimizerStep(kind, { params, gradients: Float32Array.from(g), states, learningRate: lr, step: k + 1, hyper: h });
      return { params: params.slice(), states: states.map((x) => x.slice()), norm };
    });
  }

  it.each(ref.cases.map((c) => [c.name, c]))('%s: 3 steps against PyTorch', (_name, c) => {
    fused(c.optimizer, c.hyper.lr, hyperOf(c), ref.params, ref.grads).forEach((s, k) => {
      const r = c.steps[k];
      expectClose(s.params, r.params, 2e-6, `${c.name} step ${k + 1} params`);
      expect(s.norm).toBeCloseTo(r.grad_norm, 5);
      OPTIMIZER_STATES[c.optimizer].forEach((name, j) => {
        if (r.state[name]) expectClose(s.states[j], r.state[name], 2e-6, `${c.name} step ${k + 1} ${name}`);
      });
    });
  });

  it('agrees with the ONNX optimizer model within float32 rounding', async () => {
    for (const kind of ['adamw', 'sgd'] as const) {
      const h = { ...defaultHyperparameters(kind), momentum: 0.9, weightDecay: 0.05, maxGradNorm: 1 };
      const a = fused(kind, 0.05, h, ref.params, ref.grads);
      const b = await runSteps(kind, 0.05, h, ref.params, ref.grads);
      a.forEach((s, k) => expectClose(s.params, b[k].params, 1e-6, `${kind} step ${k + 1}`));
    }
  });

  it('one SGD step with lr = 1 is exactly θ − ∇θ (float32)', () => {
    const [s] = fused('sgd', 1, defaultHyperparameters('sgd'), ref.params, [ref.grads[0]]);
    expect(Array.from(s.params)).toEqual(ref.params.map((p, i) => Math.fround(Math.fround(p) - Math.fround(ref.grads[0][i]))));
  });
});

describe('fusedOptimizerStep with non-finite gradients', () => {
  it.each(['adamw', 'sgd'] as const)('%s leaves parameters and moments untouched and reports the non-finite norm', (kind) => {
    const { fusedOptimizerStep: step, defaultHyperparameters: hyper } = require('../../src/train/optimizer');
    const params = Float32Array.of(1, 2, 3);
    const states = kind === 'adamw' ? [Float32Array.of(0.1, 0.2, 0.3), Float32Array.of(0.01, 0.02, 0.03)] : [Float32Array.of(0.5, 0.5, 0.5)];
    const before = [params, ...states].map((a) => Array.from(a));
    const norm = step(kind, { params, gradients: Float32Array.of(0.1, NaN, 0.2), states, learningRate: 0.1, step: 1, hyper: { ...hyper(kind), momentum: 0.9 } });
    expect(Number.isNaN(norm)).toBe(true);
    expect([params, ...states].map((a) => Array.from(a))).toEqual(before);
  });
});
