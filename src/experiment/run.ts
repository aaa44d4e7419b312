// Experiment, runner: the amnesic experiment of issue 4, end to end.
//   1. baseline post-hoc probes (adversary and target labels) on the original encoder;
//   2. amnesic training: GRL on the adversary head, adversary + target losses;
//   3. fresh post-hoc probes on the amnesic encoder, and the heads' own dev scores;
//      stages 2–3 run once per training seed (removal varies a lot between seeds),
//      and the headline numbers are summarised as mean, min and max over seeds;
//   4. trainability: a fresh adversary head fine-tuned (encoder trainable) on the
//      original encoder and on the FIRST seed's amnesic encoder, with the same
//      budget, with learning curves.
// Never prints: progress goes through hooks, results into the returned report.
import * as fs from 'fs';
import * as path from 'path';
import { Model, loadModel } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { packageVersion } from '../version';
import { HeadInfo, analyzeHeads, resolveHead } from '../patch/heads';
import { DataSpec, Example, countTruncated } from '../data/jsonl';
import { corpusForEval, corpusForModel, loadExamples } from '../data/examples';
import { train, StepRecord, EvalRecord } from '../train/trainer';
import { extractFeatures, Features } from '../probe/features';
import { ProbeReport, ProbeScores, runProbe } from '../probe/probe';
import { labelCounts } from '../probe/baselines';
import { ExperimentConfig, FALLBACK_MODEL, DEFAULT_MODEL, trainSeeds } from './config';
import { HeadShape, freshHead, headScores, headShape, taggerSpec, withWeightsOf } from './models';

export interface ExperimentHooks {
  /** A new stage starts (one line of progress). */
  onStage?(stage: string, message: string): void;
  /** Steps inside a training stage. */
  onProgress?(stage: string, done: number, total: number, info: string): void;
  onWarning?(message: string): void;
  /** Called once the inputs are validated, right before the first write into the output folder (the CLI takes its lock here). */
  beforeWrite?(): void;
}

export interface StageResult {
  probes: Record<string, ProbeReport>;
  /** The heads' own scores on the dev sentences. */
  heads: Record<string, ProbeScores>;
}

export interface CurvePoint { step: number; value: number }

export interface TrainabilityRun {
  /** Dev accuracy of the fresh head every evalEvery steps (step 0 = before any update). */
  devAccuracy: CurvePoint[];
  trainLoss: CurvePoint[];
  finalDevAccuracy: number;
  medianStepMs: number;
}

export interface AmnesicRun {
  steps: number;
  medianStepMs: number;
  model: string;
  /** Per training step: losses, the adversary's and target's training accuracy, λ. */
  curve: { step: number; loss: number; adversaryLoss: number; adversaryAccuracy: number; targetLoss: number; targetAccuracy: number; lambda: number }[];
  lastEval?: EvalRecord;
}

/** Stages 2–3 for one training seed. */
export interface SeedResult {
  seed: number;
  amnesic: AmnesicRun;
  after: StageResult;
  findings: SeedFindings;
}

/** The headline numbers after amnesic training, for one seed. */
export interface SeedFindings {
  adversaryProbeAfter: number;
  /** After-probe accuracy minus majority: what the encoder still leaks. */
  leakage: number;
  /** Control-task accuracy of the after-probe (NaN without a control). */
  adversaryControlAfter: number;
  /** After-probe accuracy minus control accuracy (NaN without a control). */
  adversarySelectivityAfter: number;
  /** Fraction of the probe's above-majority accuracy that was removed (1 = down to majority). */
  removedFraction: number;
  /** The adversary head's own dev accuracy after training. */
  adversaryHeadAfter: number;
  targetHeadAfter: number;
  /** The target head's dev accuracy on non-majority tokens (for ner: entity tokens). */
  targetHeadNonMajorityAfter: number;
}

export interface Spread { mean: number; min: number; max: number }

export interface ExperimentReport {
  tool: { name: 'grl-onnx'; version: string };
  config: ExperimentConfig;
  seeds: ExperimentConfig['seeds'];
  model: { path: string; fallback: boolean; probeTensor: string; adversary: string; target: string; classes: Record<string, number> };
  data: { trainSentences: number; devSentences: number; testSentences: number; probeTrainSentences: number; probeEvalSentences: number };
  baseline: StageResult;
  /** Amnesic training and after-probes, one entry per training seed (in config order). */
  perSeed: SeedResult[];
  /** Runs on the original encoder and on the amnesic encoder of the first seed only. */
  trainability: { seed: number; freshParams: string[]; original: TrainabilityRun; amnesic: TrainabilityRun };
  findings: Findings;
  /** Wall-clock seconds per stage (amnesic/after summed over seeds). */
  timings: Record<string, number>;
}

export interface Findings {
  trainSeeds: number[];
  adversaryProbeBefore: number;
  adversaryMajority: number;
  adversaryControlBefore: number;
  targetHeadBefore: number;
  targetHeadNonMajorityBefore: number;
  /** Each headline number after amnesic training: mean, min and max over the training seeds. */
  after: Record<keyof SeedFindings, Spread>;
  trainabilitySeed: number;
  trainabilityFinalOriginal: number;
  trainabilityFinalAmnesic: number;
}

/** Mean, min and max (NaN if any value is NaN, so a missing number is never averaged away). */
export function spread(values: number[]): Spread {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) return { mean: NaN, min: NaN, max: NaN };
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values) };
}

const first = <T>(xs: T[], n: number): T[] => (n > 0 ? xs.slice(0, n) : xs);
export const seconds = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;

/** The most frequent label of `key` over the examples (ignored positions skipped). */
export function majorityLabel(examples: Example[], key: string, numClasses: number): number {
  const ys: number[] = [];
  for (const e of examples) {
    const v = e.labels[key];
    if (typeof v === 'number') ys.push(v);
    else for (const y of v) if (y >= 0) ys.push(y);
  }
  const c = labelCounts(ys, numClasses);
  return c.indexOf(Math.max(...c));
}

export async function runExperiment(cfg: ExperimentConfig, outDir: string, hooks: ExperimentHooks = {}): Promise<ExperimentReport> {
  const timings: Record<string, number> = {};
  const tAll = performance.now();
  const setup = openModel(cfg, hooks);
  let t0 = performance.now();
  const data = loadSplits(cfg, outDir, hooks, setup);
  timings.data = seconds(t0);
  const s: Stages = { cfg, outDir, hooks, ...setup, ...data };
  const { adv, tgt } = s;

  // 1. Baseline.
  t0 = performance.now();
  const baseline = await probeStage(s, 'baseline', s.original);
  timings.baseline = seconds(t0);

  // 2–3. Amnesic training and the after-probes, once per training seed. Only the first
  // seed's amnesic encoder is kept in memory, for the trainability runs.
  const seeds = trainSeeds(cfg);
  const perSeed: SeedResult[] = [];
  let firstAmnesic: Model | undefined;
  timings.amnesic = 0;
  timings.after = 0;
  for (const [i, seed] of seeds.entries()) {
    t0 = performance.now();
    const { run: amnesic, model: amnesicModel } = await amnesicTraining(s, seed, i, seeds.length);
    if (i === 0) firstAmnesic = amnesicModel;
    timings.amnesic += seconds(t0);

    t0 = performance.now();
    const after = await probeStage(s, 'after', amnesicModel, ` on the amnesic encoder of seed ${seed}`);
    timings.after += seconds(t0);
    perSeed.push({ seed, amnesic, after, findings: seedFindings(baseline, after, adv.name, tgt.name) });
  }
  timings.amnesic = Math.round(timings.amnesic * 100) / 100;
  timings.after = Math.round(timings.after * 100) / 100;

  // 4. Trainability: the same fresh head and budget on both encoders.
  t0 = performance.now();
  const tOrig = await trainFreshHead(s, 'original', s.original, seeds[0]);
  const tAmn = await trainFreshHead(s, 'amnesic', firstAmnesic as Model, seeds[0]);
  timings.trainability = seconds(t0);

  // Artifacts and checkpoints are large and can be regenerated; keep the trained models and metrics only.
  for (const d of [...seeds.map((sd) => `amnesic-seed${sd}`), 'trainability-original', 'trainability-amnesic']) {
    for (const f of ['artifacts', 'checkpoint']) fs.rmSync(path.join(outDir, 'runs', d, f), { recursive: true, force: true });
  }

  const findings = experimentFindings(baseline, perSeed, adv.name, tgt.name, seeds, tOrig.run, tAmn.run);
  timings.total = seconds(tAll);
  return {
    tool: { name: 'grl-onnx', version: packageVersion() },
    config: { ...cfg, model: s.modelPath },
    seeds: cfg.seeds,
    model: { path: s.modelPath, fallback: s.fallback, probeTensor: s.probeAt, adversary: adv.name, target: tgt.name, classes: { [adv.name]: s.shapes[adv.name].numClasses, [tgt.name]: s.shapes[tgt.name].numClasses } },
    data: { trainSentences: s.trainSet.length, devSentences: s.dev.length, testSentences: s.testAll.length, probeTrainSentences: s.probeTrain.length, probeEvalSentences: s.probeEval.length },
    baseline,
    perSeed,
    trainability: { seed: seeds[0], freshParams: tOrig.params, original: tOrig.run, amnesic: tAmn.run },
    findings,
    timings,
  };
}

/** The model (falling back to the fresh init tagger), its two heads, where to probe and the data layout. */
interface ModelSetup {
  modelPath: string;
  fallback: boolean;
  original: Model;
  adv: HeadInfo;
  tgt: HeadInfo;
  probeAt: string;
  shapes: Record<string, HeadShape>;
  spec: DataSpec;
}

/** The data splits every stage reads, and each head's majority label on the training set. */
interface DataSplits {
  trainSet: Example[];
  dev: Example[];
  testAll: Example[];
  probeTrain: Example[];
  probeEval: Example[];
  majority: Record<string, number>;
}

/** What the stages share. */
interface Stages extends ModelSetup, DataSplits {
  cfg: ExperimentConfig;
  outDir: string;
  hooks: ExperimentHooks;
}

function openModel(cfg: ExperimentConfig, hooks: ExperimentHooks): ModelSetup {
  let modelPath = cfg.model;
  let fallback = false;
  if (!fs.existsSync(modelPath) && modelPath.endsWith(DEFAULT_MODEL)) {
    const alt = modelPath.slice(0, -DEFAULT_MODEL.length) + FALLBACK_MODEL;
    if (fs.existsSync(alt)) {
      hooks.onWarning?.(`${modelPath} not found: using the untrained ${alt} instead (results describe a random encoder)`);
      modelPath = alt;
      fallback = true;
    }
  }
  const original = loadModel(modelPath);
  const analysis = analyzeHeads(original);
  if (analysis.heads.some((h) => h.grl)) throw new GrlError(`${modelPath}: the model already has a GradientReversal node; give the unpatched model`, { file: modelPath });
  const adv = resolveHead(original, cfg.adversary, analysis);
  const tgt = resolveHead(original, cfg.target, analysis);
  if (adv.output === tgt.output) throw new GrlError(`adversary and target are the same head ('${adv.output}')`);
  const probeAt = cfg.probeAt ?? adv.spliceTensor;
  const shapes = { [adv.name]: headShape(original, adv), [tgt.name]: headShape(original, tgt) };
  const spec = taggerSpec(original, [adv, tgt], !!cfg.truncate);
  return { modelPath, fallback, original, adv, tgt, probeAt, shapes, spec };
}

/** Load the splits; once they are valid, the output folder is created (hooks.beforeWrite first). */
function loadSplits(cfg: ExperimentConfig, outDir: string, hooks: ExperimentHooks, m: ModelSetup): DataSplits {
  hooks.onStage?.('data', `loading ${cfg.data.train}, ${cfg.data.dev}, ${cfg.data.test}`);
  const corpus = cfg.corpus && corpusForModel({ ...cfg.corpus, onWarning: hooks.onWarning }, m.original);
  const trainSet = loadExamples(cfg.data.train, m.spec, corpus);
  const devAll = loadExamples(cfg.data.dev, m.spec, corpus && corpusForEval(corpus, cfg.data.train));
  const testAll = loadExamples(cfg.data.test, m.spec, corpus && corpusForEval(corpus, cfg.data.train));
  const truncated = countTruncated(trainSet) + countTruncated(devAll) + countTruncated(testAll);
  if (truncated) hooks.onWarning?.(`truncated ${truncated} example${truncated === 1 ? '' : 's'} to the model's sequence limit (truncate)`);
  hooks.beforeWrite?.();
  fs.mkdirSync(outDir, { recursive: true });
  const majority = {
    [m.adv.name]: majorityLabel(trainSet, m.adv.name, m.shapes[m.adv.name].numClasses),
    [m.tgt.name]: majorityLabel(trainSet, m.tgt.name, m.shapes[m.tgt.name].numClasses),
  };
  return { trainSet, dev: first(devAll, cfg.devSentences), testAll, probeTrain: first(trainSet, cfg.probe.trainSentences), probeEval: first(testAll, cfg.probe.evalSentences), majority };
}

/** Post-hoc probes (adversary and target labels) at the probe tensor, and the heads' own dev scores. */
async function probeStage(s: Stages, name: string, model: Model, note = ''): Promise<StageResult> {
  const { cfg } = s;
  const probes: Record<string, ProbeReport> = {};
  const heads: Record<string, ProbeScores> = {};
  for (const h of [s.adv, s.tgt]) {
    if (!s.shapes[h.name].tokenLevel) throw new GrlError(`head '${h.name}' is not token-level; the experiment probes token encodings`);
    s.hooks.onStage?.(name, `probing '${h.name}' at ${s.probeAt} (${cfg.probe.kind} probe + control)${note}`);
    const opts = { tensor: s.probeAt, label: h.name, tokenLevel: true, session: cfg.threads ? { intraOpNumThreads: cfg.threads } : undefined };
    const ftrain: Features = await extractFeatures(model, s.probeTrain, s.spec, opts);
    const ftest: Features = await extractFeatures(model, s.probeEval, s.spec, opts);
    probes[h.name] = await runProbe(ftrain, ftest, {
      numClasses: s.shapes[h.name].numClasses, kind: cfg.probe.kind, hidden: cfg.probe.hidden, epochs: cfg.probe.epochs,
      batchSize: cfg.probe.batchSize, lr: cfg.probe.lr, seed: cfg.seeds.probe, control: true, maxTrainRows: cfg.probe.maxTrainRows, threads: cfg.threads,
    });
    heads[h.name] = await headScores(model, s.dev, s.spec, h, s.majority[h.name], cfg.threads);
  }
  return { probes, heads };
}

/** Stage 2 for one seed (the i-th of `count`): GRL on the adversary, adversary + target losses. */
async function amnesicTraining(s: Stages, seed: number, i: number, count: number): Promise<{ run: AmnesicRun; model: Model }> {
  const { cfg, adv, tgt, hooks } = s;
  const of = count > 1 ? ` (seed ${seed}, ${i + 1}/${count})` : ` (seed ${seed})`;
  hooks.onStage?.('amnesic', `training ${cfg.amnesic.steps} steps${of}: GRL on '${adv.name}' (λ ${cfg.amnesic.lambda}, ${cfg.amnesic.lambdaSchedule}), losses ${adv.name} + ${tgt.name}`);
  const curve: AmnesicRun['curve'] = [];
  const progressStage = count > 1 ? `amnesic-seed${seed}` : 'amnesic';
  const summary = await train({
    model: s.original, data: cfg.data.train, trainExamples: s.trainSet, evalExamples: s.dev,
    losses: [{ head: adv.name, weight: cfg.amnesic.adversaryWeight }, { head: tgt.name }],
    heads: [{ name: adv.name, lambda: cfg.amnesic.lambda }], lambdaSchedule: cfg.amnesic.lambdaSchedule,
    lr: cfg.amnesic.lr, warmup: cfg.amnesic.warmup, steps: cfg.amnesic.steps, batchSize: cfg.amnesic.batchSize,
    seed, out: path.join(s.outDir, 'runs', `amnesic-seed${seed}`), threads: cfg.threads,
  }, {
    onStep: (r: StepRecord) => {
      curve.push({
        step: r.step, loss: r.loss, adversaryLoss: r.losses[adv.name], adversaryAccuracy: r.accuracy[adv.name],
        targetLoss: r.losses[tgt.name], targetAccuracy: r.accuracy[tgt.name], lambda: r.lambda[adv.name] ?? NaN,
      });
      hooks.onProgress?.(progressStage, r.step, cfg.amnesic.steps, `${adv.name} acc ${(r.accuracy[adv.name] * 100).toFixed(1)}% ${tgt.name} acc ${(r.accuracy[tgt.name] * 100).toFixed(1)}% λ ${(r.lambda[adv.name] ?? 0).toFixed(3)}`);
    },
  });
  const model = withWeightsOf(s.original, loadModel(summary.model));
  return { run: { steps: summary.steps, medianStepMs: summary.medianStepMs, model: summary.model, curve, lastEval: summary.lastEval }, model };
}

/** Stage 4 on one encoder: a fresh adversary head fine-tuned with the encoder trainable, with its learning curves. */
async function trainFreshHead(s: Stages, label: 'original' | 'amnesic', encoder: Model, seed: number): Promise<{ run: TrainabilityRun; params: string[] }> {
  const { cfg, adv, hooks } = s;
  hooks.onStage?.('trainability', `fine-tuning a fresh '${adv.name}' head on the ${label} encoder (${cfg.trainability.steps} steps, encoder trainable)`);
  const fresh = freshHead(encoder, adv.name, cfg.trainability.initStd, cfg.seeds.head);
  const start = await headScores(fresh.model, s.dev, s.spec, adv, s.majority[adv.name], cfg.threads);
  const devAccuracy: CurvePoint[] = [{ step: 0, value: start.accuracy }];
  const trainLoss: CurvePoint[] = [];
  const summary = await train({
    model: fresh.model, data: cfg.data.train, trainExamples: s.trainSet, evalExamples: s.dev, losses: [{ head: adv.name }],
    lr: cfg.trainability.lr, steps: cfg.trainability.steps, batchSize: cfg.trainability.batchSize, evalEvery: cfg.trainability.evalEvery,
    seed, out: path.join(s.outDir, 'runs', `trainability-${label}`), threads: cfg.threads,
  }, {
    onStep: (r) => {
      trainLoss.push({ step: r.step, value: r.losses[adv.name] });
      hooks.onProgress?.(`trainability-${label}`, r.step, cfg.trainability.steps, `${adv.name} loss ${r.losses[adv.name].toFixed(3)}`);
    },
    onEval: (e) => devAccuracy.push({ step: e.step, value: e.heads[adv.name].accuracy ?? NaN }),
  });
  return { run: { devAccuracy, trainLoss, finalDevAccuracy: devAccuracy[devAccuracy.length - 1].value, medianStepMs: summary.medianStepMs }, params: fresh.params };
}

/** The headline numbers: before, after (spread over seeds) and trainability. */
function experimentFindings(baseline: StageResult, perSeed: SeedResult[], adv: string, tgt: string, seeds: number[], original: TrainabilityRun, amnesic: TrainabilityRun): Findings {
  const pb = baseline.probes[adv];
  const keys = Object.keys(perSeed[0].findings) as (keyof SeedFindings)[];
  return {
    trainSeeds: seeds,
    adversaryProbeBefore: pb.accuracy,
    adversaryMajority: pb.majority.accuracy,
    adversaryControlBefore: pb.control?.accuracy ?? NaN,
    targetHeadBefore: baseline.heads[tgt].accuracy,
    targetHeadNonMajorityBefore: baseline.heads[tgt].nonMajorityAccuracy,
    after: Object.fromEntries(keys.map((k) => [k, spread(perSeed.map((r) => r.findings[k]))])) as Findings['after'],
    trainabilitySeed: seeds[0],
    trainabilityFinalOriginal: original.finalDevAccuracy,
    trainabilityFinalAmnesic: amnesic.finalDevAccuracy,
  };
}

function seedFindings(baseline: StageResult, after: StageResult, adv: string, tgt: string): SeedFindings {
  const pb = baseline.probes[adv];
  const pa = after.probes[adv];
  return {
    adversaryProbeAfter: pa.accuracy,
    leakage: pa.accuracy - pa.majority.accuracy,
    adversaryControlAfter: pa.control?.accuracy ?? NaN,
    adversarySelectivityAfter: pa.selectivity ?? NaN,
    removedFraction: pb.accuracy - pb.majority.accuracy > 0 ? (pb.accuracy - pa.accuracy) / (pb.accuracy - pb.majority.accuracy) : 0,
    adversaryHeadAfter: after.heads[adv].accuracy,
    targetHeadAfter: after.heads[tgt].accuracy,
    targetHeadNonMajorityAfter: after.heads[tgt].nonMajorityAccuracy,
  };
}
