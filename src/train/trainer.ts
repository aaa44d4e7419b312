// Training loop: the programmatic trainer behind `grl-onnx train`. prepare-run.ts
// validates the model and all data and writes the artifacts first (patching GRLs
// on the fly when asked); the loop then runs steps through TrainingSession:
// forward+backward per micro-batch, one optimizer update per step, λ and lr
// from schedules that are pure functions of the step (so resume is exact),
// eval and atomic checkpoints on a cadence, and the trained inference model.
// Heads are cross-entropy (accuracy reported) or MSE regression (loss and mean
// absolute error reported; its labels take the output's static shape, NaN = ignore).
// MLM heads get labels made by masking input_ids per example (src/train/mlm.ts).
import * as fs from 'fs';
import * as path from 'path';
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { TrainingSession } from './session';
import { OptimizerKind } from './optimizer';
import { parseLambdaSchedule, parseLrSchedule } from './schedules';
import { BatchOrder, Example, makeBatch, countTruncated } from '../data/jsonl';
import { CorpusOptions } from '../data/examples';
import { writeFileAtomic } from '../onnx/io';
import { RunFolder } from './run-folder';
import { MlmOptions, TrainLossKind } from './mlm';
import { batchFeeds } from './feeds';
import { evaluate, scalar } from './evaluate';
import type { EvalRecord } from './evaluate';
import { RunGraph, RunPlan, RUN_FILES, prepareRun } from './prepare-run';

export interface TrainerOptions {
  /** Model path or loaded model. Ignored when resuming (the run folder has the artifacts). */
  model: string | Model;
  data: string;
  eval?: string;
  /** Read data/eval as corpora through a tokenizer (src/data/examples.ts); default: ids JSONL. */
  corpus?: CorpusOptions;
  /**
   * Loss heads: `kind` 'ce' (default, softmax cross-entropy), 'mse' (float regression targets) or
   * 'mlm' (cross-entropy on labels the trainer makes by masking input_ids; src/train/mlm.ts). A head
   * whose output is `mlm_logits` (or whose metadata says kind 'mlm') is 'mlm' unless a kind is given.
   */
  losses: { head: string; weight?: number; kind?: TrainLossKind }[];
  /** MLM masking: mask token, special ids, rate (defaults from `corpus.tokenizer`). */
  mlm?: MlmOptions;
  /** Splice GRLs on these heads first (if the model has none there yet). */
  heads?: { name: string; lambda?: number }[];
  lambdaSchedule?: string;
  optimizer?: OptimizerKind;
  lr: number;
  momentum?: number;
  weightDecay?: number;
  lrSchedule?: string;
  warmup?: number;
  gradClip?: number;
  gradAccum?: number;
  freeze?: string[];
  trainable?: string[];
  steps?: number;
  epochs?: number;
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  /** Continue the run in this folder (its checkpoint and artifacts). */
  resume?: string;
  /** Replace a run already in `out` (removed once the inputs are validated). */
  overwrite?: boolean;
  out: string;
  skipNonfinite?: boolean;
  /** Cut examples longer than the model's sequence limit instead of refusing them. */
  truncate?: boolean;
  /** ORT intra-op threads (default: number of cores). */
  threads?: number;
  /** Examples already loaded (the experiment reuses them); skips reading `data`/`eval`. */
  trainExamples?: Example[];
  evalExamples?: Example[];
}

/**
 * Per-head eval metrics. CE heads: mean loss over non-ignored labels, argmax accuracy, label
 * count. MSE heads: mean squared error and mean absolute error over the target values that are
 * not ignored (NaN: padding or null), and their number (no accuracy).
 */

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  losses: Record<string, number>;
  /** Argmax accuracy of the CE heads only (an MSE head has none). */
  accuracy: Record<string, number>;
  lambda: Record<string, number>;
  lr: number;
  grad_norm: number;
  step_ms: number;
  skipped?: boolean;
}


export interface TrainSummary {
  steps: number;
  startStep: number;
  totalSteps: number;
  interrupted: boolean;
  lastStep?: StepRecord;
  lastEval?: EvalRecord;
  out: string;
  model: string;
  checkpoint: string;
  metrics: string;
  medianStepMs: number;
}

export interface TrainerHooks {
  onStart?(info: { totalSteps: number; startStep: number; heads: string[]; trainableParams: number; examples: number; truncated: number }): void;
  onStep?(r: StepRecord): void;
  onEval?(r: EvalRecord): void;
  /** Polled between steps: Ctrl-C sets it. */
  shouldStop?(): boolean;
  /** Something the user should know that is not an error (a stale lock taken over). */
  onWarning?(message: string): void;
}

// Moved to their own modules (data spec and feeds; evaluation); re-exported for existing importers.
export { embeddingLimits, mseLabelLayout, mseLayouts, dataSpecFor, batchFeeds } from './feeds';
export { evaluate } from './evaluate';
export type { HeadMetrics, EvalRecord } from './evaluate';

export { RUN_FILES } from './prepare-run';

/**
 * The lines of metrics.jsonl that belong to steps up to `step` (step lines and eval lines),
 * for a resumed run. A torn last line (killed mid-write) is dropped, not an error.
 */
export function metricsUpTo(text: string, step: number): string {
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: { step?: number; eval?: { step?: number } };
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const at = rec.step ?? rec.eval?.step;
    if (at !== undefined && at <= step) kept.push(`${line}\n`);
  }
  return kept.join('');
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Run (or resume) a training run. Never prints; reports through hooks. The run folder is
 * refused when it holds a run (unless resume or overwrite) and locked while the run writes.
 */
export async function train(opts: TrainerOptions, hooks: TrainerHooks = {}): Promise<TrainSummary> {
  const folder = new RunFolder(opts.resume ?? opts.out, {
    markers: [RUN_FILES.model, RUN_FILES.checkpoint],
    files: [...Object.values(RUN_FILES), `${RUN_FILES.model}.data`],
    resume: !!opts.resume, overwrite: opts.overwrite, canResume: true, command: 'grl-onnx train',
    input: typeof opts.model === 'string' ? { model: opts.model, written: [RUN_FILES.model] } : undefined,
  });
  try {
    return await trainIn(folder, opts, hooks);
  } catch (e) {
    // A run that fails before its first step completes (onnxruntime refusing the model at
    // step 1) leaves no half-made folder: no model, checkpoint or metrics line was written.
    const metrics = path.join(folder.dir, RUN_FILES.metrics);
    if (!opts.resume && (!fs.existsSync(metrics) || fs.statSync(metrics).size === 0)) folder.discardUnfinished(Object.values(RUN_FILES));
    throw e;
  } finally {
    folder.release();
  }
}

interface LoopContext {
  session: TrainingSession;
  plan: RunPlan;
  opts: TrainerOptions;
  order: BatchOrder;
  accum: number;
  /** Saves the checkpoint before the step that failed, and names it in the error. */
  saveCheckpoint: () => Promise<void>;
  checkpointFile: string;
}

/** Forward+backward over the step's micro-batches, then the update: the step's metrics line. */
async function runStep(c: LoopContext, step: number): Promise<StepRecord> {
  const { session, plan: { graph: tg, spec, mlm, trainSet }, order, accum } = c;
  const t0 = performance.now();
  const sums: Record<string, { loss: number; correct: number; count: number }> = {};
  for (const h of tg.heads) sums[h.head] = { loss: 0, correct: 0, count: 0 };
  let total = 0;
  await session.lazyResetGrad();
  for (let m = 0; m < accum; m++) {
    const k = step * accum + m;
    const epoch = Math.floor(k / order.batchesPerEpoch);
    const batch = makeBatch(order.batch(k).map((i) => (mlm ? mlm.train(trainSet[i], epoch, i) : trainSet[i])), spec);
    const res = await session.runTrainStep(batchFeeds(batch, spec, tg.heads));
    total += scalar(res[tg.outputs.loss]) / accum;
    for (const h of tg.heads) {
      sums[h.head].loss += scalar(res[tg.outputs.headLoss[h.head]]) / accum;
      if (h.kind === 'mse') continue;
      sums[h.head].correct += scalar(res[tg.outputs.correct[h.head]]);
      sums[h.head].count += scalar(res[tg.outputs.count[h.head]]);
    }
  }
  const lambda = session.getLambdas();
  const lr = session.getLearningRate();
  const nonFinite = async (what: string, detail: string) => {
    if (!c.opts.skipNonfinite) {
      await c.saveCheckpoint();
      throw new GrlError(`non-finite ${what} at step ${step + 1}${detail}; the checkpoint before this step is in ${c.checkpointFile}; use --skip-nonfinite to skip such batches`);
    }
    session.skipOptimizerStep();
    return true;
  };
  let skipped = false;
  if (!Number.isFinite(total)) {
    const bad = tg.heads.find((h) => !Number.isFinite(sums[h.head].loss));
    skipped = await nonFinite('loss', `${bad ? ` in head '${bad.head}'` : ''} (loss ${total})`);
  } else {
    session.scaleGradients(1 / accum);
    const applied = await session.runOptimizerStep();
    if (applied === false) skipped = await nonFinite('gradient', ` (global norm ${session.lastGradientNorm}) under a finite loss`);
  }
  const stepMs = performance.now() - t0;
  return {
    step: step + 1,
    epoch: Math.floor((step * accum) / order.batchesPerEpoch),
    loss: total,
    losses: Object.fromEntries(tg.heads.map((h) => [h.head, sums[h.head].loss])),
    accuracy: Object.fromEntries(tg.heads.filter((h) => h.kind !== 'mse').map((h) => [h.head, sums[h.head].count ? sums[h.head].correct / sums[h.head].count : 0])),
    lambda,
    lr,
    grad_norm: skipped ? NaN : session.lastGradientNorm,
    step_ms: Math.round(stepMs * 100) / 100,
    ...(skipped ? { skipped: true } : {}),
  };
}

/** Learning rate, its schedule, clipping and the λ schedule of a run, on its session. */
function configureSession(session: TrainingSession, opts: TrainerOptions, tg: RunGraph, totalSteps: number): void {
  session.setLearningRate(opts.lr);
  session.registerLearningRateScheduler(parseLrSchedule(opts.lrSchedule ?? 'constant', opts.warmup ?? 0, totalSteps));
  if (opts.gradClip !== undefined) session.setHyperparameters({ maxGradNorm: opts.gradClip });
  if (!tg.lambdas.length) return;
  const lambdaMax: Record<string, number> = {};
  for (const l of tg.lambdas) lambdaMax[l.head] = opts.heads?.find((h) => h.name === l.head)?.lambda ?? l.default;
  session.registerLambdaScheduler(parseLambdaSchedule(opts.lambdaSchedule ?? 'constant'), totalSteps, lambdaMax);
}

/** run.json: the options the run was started with (paths, not loaded objects). */
function runConfig(opts: TrainerOptions, totalSteps: number): string {
  const tokenizer = opts.corpus && (typeof opts.corpus.tokenizer === 'string' ? opts.corpus.tokenizer : opts.corpus.tokenizer.file);
  const config = {
    ...opts,
    model: typeof opts.model === 'string' ? opts.model : opts.model.source,
    trainExamples: undefined,
    evalExamples: undefined,
    corpus: opts.corpus && { ...opts.corpus, tokenizer },
    totalSteps,
  };
  return `${JSON.stringify(config, null, 1)}\n`;
}

/** metrics.jsonl opened for appending; a resumed run keeps the lines up to the step it resumes from. */
function openMetrics(file: string, resume: boolean, startStep: number): number {
  const kept = resume && fs.existsSync(file) ? metricsUpTo(fs.readFileSync(file, 'utf8'), startStep) : '';
  writeFileAtomic(file, kept);
  return fs.openSync(file, 'a');
}

async function trainIn(folder: RunFolder, opts: TrainerOptions, hooks: TrainerHooks): Promise<TrainSummary> {
  const out = folder.dir;
  const at = (f: string) => path.join(out, f);
  const plan = await prepareRun(folder, opts, hooks);
  const { graph: tg, spec, trainSet, evalSet } = plan;

  const accum = Math.max(1, opts.gradAccum ?? 1);
  const order = new BatchOrder(trainSet.length, opts.batchSize, opts.shuffle ?? true, opts.seed ?? 0);
  const totalSteps = opts.steps ?? (opts.epochs ?? 1) * Math.max(1, Math.floor(order.batchesPerEpoch / accum));
  if (!(totalSteps > 0)) throw new GrlError('nothing to do: --steps (or --epochs) must be at least 1');

  const session = await TrainingSession.create(
    { artifactsDir: at(RUN_FILES.artifacts), checkpointState: opts.resume ? at(RUN_FILES.checkpoint) : undefined },
    opts.threads ? { intraOpNumThreads: opts.threads } : {},
  );
  try {
    configureSession(session, opts, tg, totalSteps);
    const startStep = session.optimizerStep;
    hooks.onStart?.({ totalSteps, startStep, heads: tg.heads.map((h) => h.head), trainableParams: session.getParametersSize(true), examples: trainSet.length, truncated: countTruncated(trainSet) + countTruncated(evalSet ?? []) });

    const metricsFile = at(RUN_FILES.metrics);
    const metrics = openMetrics(metricsFile, !!opts.resume, startStep);

    const saveCheckpoint = async () => session.saveCheckpoint(at(RUN_FILES.checkpoint));
    const loop: LoopContext = { session, plan, opts, order, accum, saveCheckpoint, checkpointFile: at(RUN_FILES.checkpoint) };
    const stepTimes: number[] = [];
    let lastStep: StepRecord | undefined;
    let lastEval: EvalRecord | undefined;
    let interrupted = false;
    const runEval = async (step: number) => {
      if (!evalSet) return;
      // The run's last eval also carries the per-class table (src/train/evaluate.ts).
      lastEval = { step, ...(await evaluate(session, evalSet, spec, tg, Math.max(opts.batchSize, 32), { labelNames: plan.labelNames, perClass: step === totalSteps, unscored: plan.mlm?.heads })) };
      fs.writeSync(metrics, `${JSON.stringify({ eval: lastEval })}\n`);
      hooks.onEval?.(lastEval);
    };

    try {
      for (let step = startStep; step < totalSteps; step++) {
        if (hooks.shouldStop?.()) {
          interrupted = true;
          break;
        }
        const rec = await runStep(loop, step);
        stepTimes.push(rec.step_ms);
        lastStep = rec;
        fs.writeSync(metrics, `${JSON.stringify(rec)}\n`);
        hooks.onStep?.(rec);
        if (opts.evalEvery && (step + 1) % opts.evalEvery === 0) await runEval(step + 1);
        if (opts.checkpointEvery && (step + 1) % opts.checkpointEvery === 0) await saveCheckpoint();
      }
      if (!interrupted && evalSet && !(opts.evalEvery && totalSteps % opts.evalEvery === 0 && lastEval?.step === totalSteps)) await runEval(session.optimizerStep);
      await saveCheckpoint();
      // onnxruntime's memory goes before the export loads the inference model beside the parameters.
      await session.release();
      if (!interrupted) await session.exportModelForInferencing(at(RUN_FILES.model));
    } finally {
      fs.closeSync(metrics);
    }
    writeFileAtomic(at(RUN_FILES.config), runConfig(opts, totalSteps));
    return {
      steps: session.optimizerStep - startStep,
      startStep,
      totalSteps,
      interrupted,
      lastStep,
      lastEval,
      out,
      model: at(RUN_FILES.model),
      checkpoint: at(RUN_FILES.checkpoint),
      metrics: metricsFile,
      medianStepMs: median(stepTimes),
    };
  } finally {
    await session.release();
  }
}
