// The WebAssembly SIMD optimizer kernels (src/train/kernels): the committed module is the
// compiled .wat, arena buffers are laid out as promised, and the updates equal a float32
// emulation of torch.optim's operation order bit for bit (and PyTorch itself closely).
import * as fs from 'fs';
import * as path from 'path';
import { KernelArena, MAX_ARENA_BYTES, kernelsFor } from '../../src/train/kernels/wasm';
import { OPTIMIZER_WASM_BASE64 } from '../../src/train/kernels/optimizer-wasm';
import { OPTIMIZER_STATES, OptimizerHyperparameters, OptimizerKind, defaultHyperparameters, fusedOptimizerStep } from '../../src/train/optimizer';
import { randn, rng } from '../helpers/build';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { compileKernels, moduleSource } = require('../../scripts/build-kernels.js');

interface RefCase { name: string; optimizer: OptimizerKind; hyper: Record<string, number>; max_grad_norm: number; steps: { params: number[]; grad_norm: number; state: Record<string, number[]> }[] }
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'optimizer-ref.json'), 'utf8')) as { params: number[]; grads: number[][]; cases: RefCase[] };

const f = Math.fround;

/** torch.optim.AdamW / SGD (1.13, CPU, single tensor) one float32 operation at a time. */
function emulate(kind: OptimizerKind, p: Float32Array, g: Float32Array, states: Float32Array[], lr: number, step: number, h: OptimizerHyperparameters): number {
  let sumSq = 0;
  for (const x of g) sumSq += x * x;
  const norm = Math.sqrt(sumSq);
  const scale = f(h.maxGradNorm > 0 ? Math.min(h.maxGradNorm / (norm + 1e-6), 1) : 1);
  for (let i = 0; i < p.length; i++) {
    const gi = f(g[i] * scale);
    if (kind === 'adamw') {
      const [m, v] = states;
      const pd = f(p[i] * f(1 - lr * h.weightDecay));
      m[i] = f(f(m[i] * f(h.beta1)) + f(f(1 - h.beta1) * gi));
      v[i] = f(f(v[i] * f(h.beta2)) + f(f(f(1 - h.beta2) * gi) * gi));
      const denom = f(f(f(Math.sqrt(v[i])) / f(Math.sqrt(1 - h.beta2 ** step))) + f(h.eps));
      p[i] = f(pd + f(f(f(-(lr / (1 - h.beta1 ** step))) * m[i]) / denom));
    } else {
      const [buf] = states;
      buf[i] = f(f(buf[i] * f(h.momentum)) + f(gi + f(f(h.weightDecay) * p[i])));
      p[i] = f(p[i] + f(f(-lr) * buf[i]));
    }
  }
  return norm;
}

function hyperOf(c: RefCase): OptimizerHyperparameters {
  return {
    ...defaultHyperparameters(c.optimizer),
    beta1: c.hyper.beta1 ?? 0.9, beta2: c.hyper.beta2 ?? 0.999, eps: c.hyper.eps ?? 1e-8,
    weightDecay: c.hyper.weight_decay, momentum: c.hyper.momentum ?? 0, maxGradNorm: c.max_grad_norm,
  };
}

/** An arena holding params, gradients and the optimizer's states, filled from `p0`/`g`. */
function arenaFor(kind: OptimizerKind, p0: ArrayLike<number>): { p: Float32Array; g: Float32Array; states: Float32Array[] } {
  const n = p0.length;
  const arena = KernelArena.create([n, n, ...OPTIMIZER_STATES[kind].map(() => n)])!;
  const [p, g, ...states] = arena.views;
  p.set(p0);
  return { p, g, states };
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('the committed wasm module', () => {
  it('is optimizer.wat compiled by scripts/build-kernels.js', async () => {
    const bytes: Buffer = await compileKernels();
    expect(Buffer.from(OPTIMIZER_WASM_BASE64, 'base64').equals(bytes)).toBe(true);
    expect(fs.readFileSync(path.join(__dirname, '../../src/train/kernels/optimizer-wasm.ts'), 'utf8')).toBe(moduleSource(bytes));
  });
});

describe('KernelArena', () => {
  it('lays out zeroed, 64-byte aligned, disjoint Float32Arrays in one memory', () => {
    const arena = KernelArena.create([5, 0, 17, 3])!;
    expect(arena.views.map((v) => v.length)).toEqual([5, 0, 17, 3]);
    expect(arena.views.map((v) => v.byteOffset)).toEqual([0, 64, 64, 192]);
    expect(new Set(arena.views.map((v) => v.buffer)).size).toBe(1);
    arena.views.forEach((v, k) => { expect(Array.from(v).every((x) => x === 0)).toBe(true); v.fill(k + 1); });
    arena.views.forEach((v, k) => expect(Array.from(v).every((x) => x === k + 1)).toBe(true));
  });

  it('declines what does not fit, so callers fall back to plain arrays', () => {
    expect(KernelArena.create([1000, 1000], 4000)).toBeUndefined();
    expect(KernelArena.create([2 ** 30, 2 ** 30])).toBeUndefined(); // 8 GiB > wasm32's 4 GiB
    expect(KernelArena.create([1000], 4096)).toBeDefined();
    expect(KernelArena.create([2 ** 30, 0])).toBeUndefined(); // one 4 GiB buffer: its byte length wraps an i32
  });

  it('kernelsFor recognises arrays of one arena only', () => {
    const a = KernelArena.create([4, 4])!;
    const b = KernelArena.create([4])!;
    expect(kernelsFor(a.views[0], a.views[1])).toBeDefined();
    expect(kernelsFor(a.views[0], b.views[0])).toBeUndefined();
    expect(kernelsFor(a.views[0], new Float32Array(4))).toBeUndefined();
    expect(kernelsFor(new Float32Array(4))).toBeUndefined();
  });
});

describe('wasm updates', () => {
  it.each(ref.cases.map((c) => [c.name, c]))('%s: 3 steps equal the float32 emulation of torch.optim bit for bit, and PyTorch to 2.5e-7', (_n, c) => {
    const h = hyperOf(c);
    const a = arenaFor(c.optimizer, ref.params);
    const e = { p: Float32Array.from(ref.params), states: OPTIMIZER_STATES[c.optimizer].map(() => new Float32Array(ref.params.length)) };
    ref.grads.forEach((grad, k) => {
      a.g.set(grad);
      const norm = fusedOptimizerStep(c.optimizer, { params: a.p, gradients: a.g, states: a.states, learningRate: c.hyper.lr, step: k + 1, hyper: h });
      const want = emulate(c.optimizer, e.p, Float32Array.from(grad), e.states, c.hyper.lr, k + 1, h);
      expect(norm).toBeCloseTo(want, 12);
      expect(bits(a.p)).toEqual(bits(e.p));
      a.states.forEach((s, j) => expect(bits(s)).toEqual(bits(e.states[j])));
      const worst = Math.max(...c.steps[k].params.map((v, i) => Math.abs(v - a.p[i])));
      // Bit-identical to PyTorch for plain AdamW; a few ulps elsewhere (torch fuses some
      // multiply-adds in its vectorized kernels).
      expect(worst).toBeLessThanOrEqual(2.5e-7);
    });
  });

  it.each([0, 1, 3, 4, 5, 7, 8, 9, 33])('handles %i elements (SIMD body and scalar tail) like the emulation', (n) => {
    for (const kind of ['adamw', 'sgd'] as const) {
      const r = rng(n + 1);
      const p0 = randn(r, n);
      const h = { ...defaultHyperparameters(kind), momentum: 0.9, weightDecay: 0.05, maxGradNorm: 0.7 };
      const a = arenaFor(kind, p0);
      const e = { p: Float32Array.from(p0), states: OPTIMIZER_STATES[kind].map(() => new Float32Array(n)) };
      for (let step = 1; step <= 2; step++) {
        const g = randn(r, n);
        a.g.set(g);
        fusedOptimizerStep(kind, { params: a.p, gradients: a.g, states: a.states, learningRate: 0.01, step, hyper: h });
        emulate(kind, e.p, g, e.states, 0.01, step, h);
      }
      expect(bits(a.p)).toEqual(bits(e.p));
      a.states.forEach((s, j) => expect(bits(s)).toEqual(bits(e.states[j])));
    }
  });

  it('one SGD step with lr = 1 is exactly θ − ∇θ', () => {
    const a = arenaFor('sgd', ref.params);
    a.g.set(ref.grads[0]);
    fusedOptimizerStep('sgd', { params: a.p, gradients: a.g, states: a.states, learningRate: 1, step: 1, hyper: defaultHyperparameters('sgd') });
    expect(Array.from(a.p)).toEqual(ref.params.map((p, i) => f(f(p) - f(ref.grads[0][i]))));
  });

  it.each(['adamw', 'sgd'] as const)('%s: a non-finite gradient leaves parameters and moments untouched', (kind) => {
    const a = arenaFor(kind, [1, 2, 3, 4, 5]);
    a.states.forEach((s) => s.fill(0.25));
    a.g.set([0.1, 0.2, Infinity, 0.3, 0.4]);
    const before = [a.p, ...a.states].map((x) => Array.from(x));
    const norm = fusedOptimizerStep(kind, { params: a.p, gradients: a.g, states: a.states, learningRate: 0.1, step: 1, hyper: { ...defaultHyperparameters(kind), momentum: 0.9 } });
    expect(norm).toBe(Infinity);
    expect([a.p, ...a.states].map((x) => Array.from(x))).toEqual(before);
  });

  // The arenas below reserve up to 4 GiB of address space but touch only a few pages.
  it('updates buffers at byte offsets above 2^31 (i32 pointers) exactly as at small offsets', () => {
    const n = 37;
    const high = KernelArena.create([(2 ** 31 + 2 ** 28) / 4, n, n, n, n])!;
    const [, P, G, M, V] = high.views;
    expect(P.byteOffset).toBeGreaterThan(2 ** 31);
    const low = arenaFor('adamw', randn(rng(1), n));
    P.set(low.p);
    const h = { ...defaultHyperparameters('adamw'), maxGradNorm: 0.5, weightDecay: 0.1 };
    for (let step = 1; step <= 3; step++) {
      const g = randn(rng(step + 10), n);
      G.set(g);
      low.g.set(g);
      const norm = fusedOptimizerStep('adamw', { params: P, gradients: G, states: [M, V], learningRate: 0.01, step, hyper: h });
      expect(norm).toBeGreaterThan(0);
      expect(norm).toBe(fusedOptimizerStep('adamw', { params: low.p, gradients: low.g, states: low.states, learningRate: 0.01, step, hyper: h }));
    }
    expect(bits(P)).toEqual(bits(low.p));
    expect(bits(V)).toEqual(bits(low.states[1]));
    const sum = Float32Array.from(P, (x, i) => f(x + G[i]));
    kernelsFor(P, G)!.accumulate(P.byteOffset, G.byteOffset, n);
    expect(bits(P)).toEqual(bits(sum));
  });

  it('sums the squares of a gradient buffer that ends exactly at 4 GiB', () => {
    const arena = KernelArena.create([(MAX_ARENA_BYTES - 64) / 4, 16])!;
    const g = arena.views[1];
    expect(g.byteOffset + g.byteLength).toBe(MAX_ARENA_BYTES);
    g.fill(2);
    expect(kernelsFor(g)!.sumsq(g.byteOffset, g.length)).toBe(64); // was 0: the end pointer wrapped
    g[15] = NaN;
    expect(kernelsFor(g)!.sumsq(g.byteOffset, g.length)).toBeNaN();
  });

  it('refuses buffers of different lengths instead of reading past one of them', () => {
    const arena = KernelArena.create([8, 8, 8, 4])!;
    const [p, g, m, v] = arena.views;
    const h = defaultHyperparameters('adamw');
    expect(() => fusedOptimizerStep('adamw', { params: p, gradients: g, states: [m, v], learningRate: 0.1, step: 1, hyper: h }))
      .toThrow('adamw update: parameters, gradients and the exp_avg, exp_avg_sq buffers must all hold 8 floats');
    expect(() => fusedOptimizerStep('adamw', { params: p, gradients: g, states: [m], learningRate: 0.1, step: 1, hyper: h })).toThrow(/must all hold 8 floats/);
    expect(Array.from(p).every((x) => x === 0)).toBe(true);
  });

  it('accumulate adds element by element', () => {
    const arena = KernelArena.create([7, 7])!;
    const [dst, src] = arena.views;
    const x = randn(rng(5), 7), y = randn(rng(6), 7);
    dst.set(x);
    src.set(y);
    kernelsFor(dst, src)!.accumulate(dst.byteOffset, src.byteOffset, 7);
    expect(Array.from(dst)).toEqual(Array.from(x, (v, i) => f(v + y[i])));
  });
});
