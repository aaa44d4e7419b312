// Experiment (erasure), measurements on one encoder: a fresh post-hoc probe of
// the concept (with majority and control baselines), MLM accuracy on a fixed
// masking of dev sentences, and the trainability of a fresh target head (dev
// learning curve, encoder trainable, eraser matrices frozen).
import * as path from 'path';
import { Model, loadModel } from '../../onnx/io';
import { DataSpec, Example } from '../../data/jsonl';
import { EVAL_STREAM, Masker } from '../../data/masking';
import { extractFeatures } from '../../probe/features';
import { ProbeReport, ProbeScores, runProbe } from '../../probe/probe';
import { addHeads } from '../../heads/add';
import { resolveHead } from '../../patch/heads';
import { train } from '../../train/trainer';
import { headScores } from '../models';
import type { CurvePoint } from '../run';
import type { ErasureConfig } from './config';

/** What every measurement needs: the data, the label spaces, where to probe. */
export interface ErasureContext {
  cfg: ErasureConfig;
  /** The tensor information is removed at and probed at. */
  at: string;
  /** The spec of the model inputs plus the concept and target labels (token level). */
  spec: DataSpec;
  classes: { concept: number; target: number };
  /** Label names per key (from the training corpus). */
  labelNames: Record<string, string[]>;
  train: Example[];
  dev: Example[];
  test: Example[];
  masker: Masker;
  /** The MLM head's output and name. */
  mlm: { head: string; output: string; vocab: number };
  outDir: string;
  majority: { concept: number; target: number };
}

const first = <T>(xs: T[], n: number): T[] => (n > 0 ? xs.slice(0, n) : xs);

const session = (cfg: ErasureConfig) => (cfg.threads ? { intraOpNumThreads: cfg.threads } : undefined);

/** A fresh linear probe of the concept at `ctx.at`, trained on train, scored on held-out test. */
export async function probeConcept(ctx: ErasureContext, model: Model): Promise<ProbeReport> {
  const { cfg } = ctx;
  const opts = { tensor: ctx.at, label: cfg.concept, tokenLevel: true, session: session(cfg) };
  const ftrain = await extractFeatures(model, first(ctx.train, cfg.probe.trainSentences), ctx.spec, opts);
  const ftest = await extractFeatures(model, first(ctx.test, cfg.probe.evalSentences), ctx.spec, opts);
  return runProbe(ftrain, ftest, {
    numClasses: ctx.classes.concept, kind: cfg.probe.kind, hidden: cfg.probe.hidden, epochs: cfg.probe.epochs,
    batchSize: cfg.probe.batchSize, lr: cfg.probe.lr, seed: cfg.seeds.probe, control: true, maxTrainRows: cfg.probe.maxTrainRows, threads: cfg.threads,
  });
}

/** The dev sentences with one fixed BERT masking (the same for every encoder). */
export function maskedDev(ctx: ErasureContext): Example[] {
  return first(ctx.dev, ctx.cfg.mlm.evalSentences).map((e, i) => ctx.masker.maskExample(e, EVAL_STREAM, i, 'input_ids', [ctx.mlm.head]));
}

/** MLM accuracy (argmax = original token) over the masked positions of `masked`. */
export async function mlmAccuracy(ctx: ErasureContext, model: Model, masked: Example[]): Promise<ProbeScores> {
  const spec: DataSpec = { ...ctx.spec, labels: [{ key: ctx.mlm.head, tokenLevel: true, numClasses: ctx.mlm.vocab }] };
  const head = resolveHead(model, ctx.mlm.head);
  return headScores(model, masked, spec, head, 0, ctx.cfg.threads);
}

export interface TrainabilityRun {
  /** Dev accuracy of the fresh target head (step 0 = before any update). */
  devAccuracy: CurvePoint[];
  /** Dev accuracy on the target's non-majority tokens (for ner: entity tokens). */
  devNonMajority: CurvePoint[];
  /** Dev loss of the fresh head: with a majority class near 98% (ner's O), the loss shows learning long before accuracy does. */
  devLoss: CurvePoint[];
  trainLoss: CurvePoint[];
  finalDevAccuracy: number;
  finalNonMajority: number;
  /** Dev loss at the last eval (NaN without evals). */
  finalDevLoss: number;
  medianStepMs: number;
}

/**
 * A fresh target head (linear, seeded) on `at`, fine-tuned with the encoder trainable (eraser
 * matrices stay frozen: training never makes them parameters). The same seed on every encoder
 * gives every encoder the same initial head and the same batches.
 */
export async function trainability(ctx: ErasureContext, encoder: Model, label: string, seed: number, onStep?: (step: number, info: string) => void): Promise<TrainabilityRun> {
  const { cfg } = ctx;
  const t = cfg.target;
  const { model } = addHeads(encoder, [{ name: t, classes: ctx.classes.target, from: ctx.at }], { seed: cfg.seeds.head });
  const dev = first(ctx.dev, cfg.trainability.devSentences);
  const spec: DataSpec = { ...ctx.spec, labels: ctx.spec.labels.filter((l) => l.key === t) };
  const head = resolveHead(model, t);
  const start = await headScores(model, dev, spec, head, ctx.majority.target, cfg.threads);
  const devAccuracy: CurvePoint[] = [{ step: 0, value: start.accuracy }];
  const devNonMajority: CurvePoint[] = [{ step: 0, value: start.nonMajorityAccuracy }];
  const trainLoss: CurvePoint[] = [];
  const devLoss: CurvePoint[] = [];
  const s = await train({
    model, data: cfg.data.train, trainExamples: ctx.train, evalExamples: dev, losses: [{ head: t }],
    lr: cfg.trainability.lr, steps: cfg.trainability.steps, batchSize: cfg.trainability.batchSize, evalEvery: cfg.trainability.evalEvery,
    seed, out: path.join(ctx.outDir, 'runs', `trainability-${label}`), threads: cfg.threads,
  }, {
    onStep: (r) => {
      trainLoss.push({ step: r.step, value: r.losses[t] });
      onStep?.(r.step, `${t} loss ${r.losses[t].toFixed(3)}`);
    },
    onEval: (e) => {
      devAccuracy.push({ step: e.step, value: e.heads[t].accuracy ?? NaN });
      devLoss.push({ step: e.step, value: e.heads[t].loss });
    },
  });
  // The trainer's eval reports overall accuracy; the non-majority (entity-token) score at the end
  // comes from the trained model itself.
  const trained = loadModel(s.model);
  const end = await headScores(trained, dev, spec, resolveHead(trained, t), ctx.majority.target, cfg.threads);
  devNonMajority.push({ step: s.steps, value: end.nonMajorityAccuracy });
  if (devAccuracy[devAccuracy.length - 1].step !== s.steps) devAccuracy.push({ step: s.steps, value: end.accuracy });
  return { devAccuracy, devNonMajority, devLoss, trainLoss, finalDevAccuracy: end.accuracy, finalNonMajority: end.nonMajorityAccuracy, finalDevLoss: devLoss.length ? devLoss[devLoss.length - 1].value : NaN, medianStepMs: s.medianStepMs };
}
