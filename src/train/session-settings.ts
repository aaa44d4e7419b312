// Training: a TrainingSession's settings and progress. The optimizer step count, the base
// learning rate and its schedule, the optimizer hyperparameters, each GRL head's λ (the
// scalar tensor fed to `grl.<head>.lambda`) and its schedule; read from a checkpoint's
// property bag and written back into it, so a session created from a saved checkpoint
// continues exactly where the saving one stopped.
import * as ort from 'onnxruntime-node';
import { GrlError } from '../onnx/errors';
import { OptimizerGroup, PropertyBag, SESSION_PROPERTY } from './checkpoint';
import { HYPERPARAMETER_INPUTS, OptimizerHyperparameters, OptimizerKind, defaultHyperparameters } from './optimizer';
import { LambdaSchedule, LrSchedule, lambdaAt, lrAt } from './schedules';

export const LAMBDA_INPUT = /^grl\.(.+)\.lambda$/;

export type LrScheduleOrFunction = LrSchedule | ((step: number, baseLr: number) => number);

/** What the checkpoint property SESSION_PROPERTY holds, as JSON (exact float64 values). */
interface SavedSettings {
  optimizer?: OptimizerKind;
  learningRate?: number;
  hyperparameters?: OptimizerHyperparameters;
  /** Each head's current λ (the scheduled value when a schedule runs). */
  lambdas?: Record<string, number>;
  /** Each head's λ_max, which a schedule scales: early in a dann run λ itself is near 0. */
  lambdaMax?: Record<string, number>;
  /** The registered λ schedule, so a session created from the checkpoint continues it. */
  lambdaSchedule?: { schedule: LambdaSchedule; totalSteps: number };
}

export function scalarTensor(v: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.of(v), []);
}

/** Where the settings come from: the checkpoint, and what the artifacts' layout fixes. */
export interface SettingsSource {
  properties: PropertyBag;
  group: Pick<OptimizerGroup, 'step' | 'initialLearningRate'> | undefined;
  /** The layout's optimizer (the optimizer model's), else the checkpoint's. */
  layoutOptimizer: OptimizerKind | undefined;
  /** An ORT-layout optimizer model fixes them in its node's attributes: those are what ORT runs. */
  layoutHyperparameters: Partial<OptimizerHyperparameters> | undefined;
  trainInputNames: readonly string[];
}

export class SessionSettings {
  readonly optimizerKind: OptimizerKind | undefined;
  /** Optimizer steps taken (counted skips included). */
  step: number;
  baseLr: number;
  hyper: OptimizerHyperparameters;
  lrSchedule: LrScheduleOrFunction | undefined;
  private lambdaSchedule: { schedule: LambdaSchedule; totalSteps: number; lambdaMax: Record<string, number> } | undefined;
  /** The last λ_max known (registered, or restored from the checkpoint); registerLambdaScheduler's default. */
  private lambdaMax: Record<string, number> | undefined;
  /** Each GRL head's λ input and the tensor fed to it (updated in place). */
  readonly lambdaFeeds = new Map<string, { input: string; tensor: ort.Tensor }>();

  constructor(src: SettingsSource) {
    const saved = readSettings(src.properties);
    this.optimizerKind = src.layoutOptimizer ?? saved.optimizer;
    this.step = src.group?.step ?? 0;
    this.baseLr = saved.learningRate ?? src.group?.initialLearningRate ?? 1e-3;
    this.hyper = { ...defaultHyperparameters(this.optimizerKind ?? 'adamw'), ...saved.hyperparameters, ...src.layoutHyperparameters };
    for (const input of src.trainInputNames) {
      const m = LAMBDA_INPUT.exec(input);
      if (!m) continue;
      const v = saved.lambdas?.[m[1]] ?? src.properties.floats[input] ?? 1;
      this.lambdaFeeds.set(m[1], { input, tensor: scalarTensor(v) });
    }
    this.lambdaMax = saved.lambdaMax;
    if (saved.lambdaSchedule) this.registerLambdaScheduler(saved.lambdaSchedule.schedule, saved.lambdaSchedule.totalSteps);
  }

  /** The training model's λ inputs. */
  lambdaInputs(): Set<string> {
    return new Set([...this.lambdaFeeds.values()].map((l) => l.input));
  }

  /** The learning rate of the next optimizer step. */
  learningRate(): number {
    const s = this.lrSchedule;
    if (!s) return this.baseLr;
    return typeof s === 'function' ? s(this.step, this.baseLr) : lrAt(s, this.baseLr, this.step);
  }

  getLambdas(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [head, { tensor }] of this.lambdaFeeds) out[head] = (tensor.data as Float32Array)[0];
    return out;
  }

  setLambda(head: string, value: number): void {
    const l = this.lambdaFeeds.get(head);
    if (!l) throw new GrlError(`no gradient-reversal head '${head}' in the training model (heads: ${[...this.lambdaFeeds.keys()].join(', ') || 'none'})`);
    (l.tensor.data as Float32Array)[0] = value;
  }

  /** See TrainingSession.registerLambdaScheduler. */
  registerLambdaScheduler(schedule: LambdaSchedule | undefined, totalSteps = 1, lambdaMax?: Record<string, number>): void {
    this.lambdaSchedule = schedule && { schedule, totalSteps, lambdaMax: { ...this.getLambdas(), ...this.lambdaMax, ...lambdaMax } };
    if (this.lambdaSchedule) this.lambdaMax = this.lambdaSchedule.lambdaMax;
  }

  /** Set every λ to the registered schedule's value at the current step. */
  applyLambdaSchedule(): void {
    const s = this.lambdaSchedule;
    if (!s) return;
    for (const head of this.lambdaFeeds.keys()) this.setLambda(head, lambdaAt(s.schedule, s.lambdaMax[head] ?? 1, this.step, s.totalSteps));
  }

  /**
   * Write the settings into a checkpoint's property bag: exactly (JSON, SESSION_PROPERTY) for
   * grl-onnx, and as float properties ORT's tools show (learning rate, hyperparameters, λ).
   */
  writeProperties(properties: PropertyBag): void {
    const ls = this.lambdaSchedule;
    const saved: SavedSettings = {
      optimizer: this.optimizerKind, learningRate: this.baseLr, hyperparameters: this.hyper, lambdas: this.getLambdas(),
      lambdaMax: this.lambdaMax, lambdaSchedule: ls && { schedule: ls.schedule, totalSteps: ls.totalSteps },
    };
    properties.strings[SESSION_PROPERTY] = JSON.stringify(saved);
    if (this.optimizerKind) properties.strings['optimizer'] = this.optimizerKind;
    properties.floats['learning_rate'] = this.learningRate();
    for (const [input, field] of this.optimizerKind ? HYPERPARAMETER_INPUTS[this.optimizerKind] : []) properties.floats[`optimizer.${input}`] = this.hyper[field];
    for (const { input, tensor } of this.lambdaFeeds.values()) properties.floats[input] = (tensor.data as Float32Array)[0];
  }
}

function readSettings(p: PropertyBag): SavedSettings {
  const text = p.strings[SESSION_PROPERTY];
  if (!text) return {};
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch {
    throw new GrlError(`checkpoint property '${SESSION_PROPERTY}' is not valid JSON`);
  }
  const wrong = settingsProblem(saved);
  if (wrong) throw new GrlError(`checkpoint property '${SESSION_PROPERTY}' is not grl-onnx session settings (${wrong})`);
  return saved as SavedSettings;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumbers = (v: unknown) => isObject(v) && Object.values(v).every((x) => typeof x === 'number');
const LAMBDA_SCHEDULES = ['constant', 'dann', 'linear'];

/** What in a parsed SESSION_PROPERTY is not SavedSettings' shape (a checkpoint is untrusted input). */
function settingsProblem(s: unknown): string | undefined {
  if (!isObject(s)) return 'not an object';
  if (s.optimizer !== undefined && !(typeof s.optimizer === 'string' && s.optimizer in HYPERPARAMETER_INPUTS)) return `optimizer ${JSON.stringify(s.optimizer)}`;
  if (s.learningRate !== undefined && typeof s.learningRate !== 'number') return 'learningRate';
  for (const k of ['hyperparameters', 'lambdas', 'lambdaMax'] as const) if (s[k] !== undefined && !isNumbers(s[k])) return k;
  const ls = s.lambdaSchedule;
  if (ls === undefined) return undefined;
  const kind = isObject(ls) && isObject(ls.schedule) ? ls.schedule.kind : undefined;
  const ok = isObject(ls) && typeof ls.totalSteps === 'number' && typeof kind === 'string' && LAMBDA_SCHEDULES.includes(kind)
    && (kind !== 'linear' || typeof (ls.schedule as Record<string, unknown>).warmup === 'number');
  return ok ? undefined : 'lambdaSchedule';
}
