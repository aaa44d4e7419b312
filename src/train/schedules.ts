// Training: learning-rate and λ schedules. Pure functions of the step index, so
// a resumed run recomputes exactly the values an uninterrupted run would use.
//
// Step convention: `step` is the 0-based index of the optimizer step about to be
// taken (0 for the first update). Learning-rate schedules follow Hugging Face's
// `get_{constant,linear,cosine}_schedule_with_warmup`: during warm-up the factor
// is step/warmup (so with warmup > 0 the very first update uses lr 0, as there).
import { GrlError } from '../onnx/errors';

export type LrSchedule =
  | { kind: 'constant'; warmup?: number }
  | { kind: 'linear'; warmup?: number; totalSteps: number }
  | { kind: 'cosine'; warmup?: number; totalSteps: number };

/** The multiplier applied to the base learning rate at `step`. */
export function lrFactor(s: LrSchedule, step: number): number {
  const warmup = s.warmup ?? 0;
  if (step < warmup) return step / Math.max(1, warmup);
  switch (s.kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (s.totalSteps - step) / Math.max(1, s.totalSteps - warmup));
    case 'cosine': {
      // Clamped so steps past the end stay at 0 instead of climbing the next half-wave.
      const progress = Math.min(1, (step - warmup) / Math.max(1, s.totalSteps - warmup));
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}

export function lrAt(s: LrSchedule, baseLr: number, step: number): number {
  return baseLr * lrFactor(s, step);
}

/** `constant`, `linear` or `cosine` (as on the command line) with warm-up and length. */
export function parseLrSchedule(text: string, warmup: number, totalSteps: number): LrSchedule {
  switch (text) {
    case 'constant': return { kind: 'constant', warmup };
    case 'linear': return { kind: 'linear', warmup, totalSteps };
    case 'cosine': return { kind: 'cosine', warmup, totalSteps };
    default: throw new GrlError(`unknown learning-rate schedule '${text}' (expected constant, linear or cosine)`);
  }
}

export type LambdaSchedule =
  | { kind: 'constant' }
  /** Ganin & Lempitsky (2015): λ_p = λ_max · (2 / (1 + e^(−10p)) − 1), p = training progress 0..1. */
  | { kind: 'dann' }
  /** 0 → λ_max linearly over `warmup` steps, then λ_max. */
  | { kind: 'linear'; warmup: number };

/** λ at `step` (0-based) of a run of `totalSteps` steps. */
export function lambdaAt(s: LambdaSchedule, lambdaMax: number, step: number, totalSteps: number): number {
  switch (s.kind) {
    case 'constant':
      return lambdaMax;
    case 'dann': {
      const p = Math.min(1, Math.max(0, step / Math.max(1, totalSteps)));
      return lambdaMax * (2 / (1 + Math.exp(-10 * p)) - 1);
    }
    case 'linear':
      return s.warmup <= 0 ? lambdaMax : lambdaMax * Math.min(1, step / s.warmup);
  }
}

/** `constant`, `dann` or `linear:N`. */
export function parseLambdaSchedule(text: string): LambdaSchedule {
  if (text === 'constant') return { kind: 'constant' };
  if (text === 'dann') return { kind: 'dann' };
  const m = /^linear:(\d+)$/.exec(text);
  if (m) return { kind: 'linear', warmup: Number(m[1]) };
  throw new GrlError(`unknown λ schedule '${text}' (expected constant, dann or linear:WARMUP_STEPS)`);
}
