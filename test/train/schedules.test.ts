import { lambdaAt, lrAt, lrFactor, parseLambdaSchedule, parseLrSchedule } from '../../src/train/schedules';

describe('learning-rate schedules', () => {
  it('constant holds the base rate, after an optional warm-up', () => {
    expect([0, 1, 1000].map((s) => lrAt({ kind: 'constant' }, 0.1, s))).toEqual([0.1, 0.1, 0.1]);
    expect([0, 2, 4, 5].map((s) => lrFactor({ kind: 'constant', warmup: 4 }, s))).toEqual([0, 0.5, 1, 1]);
  });

  it('linear warms up, then decays to 0 at totalSteps', () => {
    const s = parseLrSchedule('linear', 10, 110);
    expect([0, 5, 10, 60, 109, 110, 200].map((k) => lrFactor(s, k))).toEqual([0, 0.5, 1, 0.5, 0.01, 0, 0]);
    expect(lrAt(s, 2e-3, 60)).toBe(1e-3);
  });

  it('linear without warm-up uses the full rate on the first step (the one-step SGD rule)', () => {
    expect(lrFactor(parseLrSchedule('linear', 0, 1), 0)).toBe(1);
    expect(lrFactor(parseLrSchedule('cosine', 0, 1), 0)).toBe(1);
  });

  it('cosine follows half a cosine after warm-up', () => {
    const s = parseLrSchedule('cosine', 10, 110);
    expect(lrFactor(s, 5)).toBe(0.5);
    expect(lrFactor(s, 10)).toBe(1);
    expect(lrFactor(s, 35)).toBeCloseTo(0.8535533905932737, 15);
    expect(lrFactor(s, 60)).toBeCloseTo(0.5, 15);
    expect(lrFactor(s, 110)).toBe(0);
    expect(lrFactor(s, 150)).toBe(0);
  });

  it('rejects an unknown schedule with one line', () => {
    expect(() => parseLrSchedule('step', 0, 10)).toThrow("unknown learning-rate schedule 'step' (expected constant, linear or cosine)");
  });
});

describe('λ schedules', () => {
  it('constant holds λ_max', () => {
    expect([0, 50, 100].map((s) => lambdaAt({ kind: 'constant' }, 0.7, s, 100))).toEqual([0.7, 0.7, 0.7]);
  });

  it('dann is λ_max·(2/(1+e^(−10p)) − 1)', () => {
    const s = parseLambdaSchedule('dann');
    expect(lambdaAt(s, 1, 0, 100)).toBe(0);
    expect(lambdaAt(s, 1, 25, 100)).toBeCloseTo(0.8482836399575131, 15);
    expect(lambdaAt(s, 1, 50, 100)).toBeCloseTo(0.9866142981514305, 15);
    expect(lambdaAt(s, 1, 100, 100)).toBeCloseTo(0.9999092042625952, 15);
    expect(lambdaAt(s, 2, 50, 100)).toBeCloseTo(2 * 0.9866142981514305, 15);
    // Progress is clamped to [0, 1].
    expect(lambdaAt(s, 1, 300, 100)).toBe(lambdaAt(s, 1, 100, 100));
  });

  it('linear:N ramps from 0 to λ_max over N steps, then holds', () => {
    const s = parseLambdaSchedule('linear:4');
    expect(s).toEqual({ kind: 'linear', warmup: 4 });
    expect([0, 1, 2, 4, 9].map((k) => lambdaAt(s, 0.8, k, 10))).toEqual([0, 0.2, 0.4, 0.8, 0.8]);
  });

  it('rejects malformed schedules', () => {
    expect(() => parseLambdaSchedule('linear:')).toThrow("unknown λ schedule 'linear:'");
    expect(() => parseLambdaSchedule('exp')).toThrow('expected constant, dann or linear:WARMUP_STEPS');
  });
});
