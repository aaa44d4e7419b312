// Experiment (erasure), the removal methods side by side. Each takes the
// original encoder (with its MLM head) and returns an encoder from which the
// concept was removed at `ctx.at`, plus what the removal did:
//   grl    — amnesic training: a fresh concept head behind a GRL on `at`, trained
//            together with the MLM loss (the task to keep); the trained encoder
//            and MLM head, without the concept head, are the result;
//   inlp   — iterative nullspace projection fit on the original encodings;
//   leace  — the closed-form least-squares concept eraser;
//   random — a projection removing as many random directions as INLP removed
//            (amnesic probing's control: does removing *any* rank-k subspace hurt?);
//   random-leace — the same control at LEACE's rank.
import * as path from 'path';
import { Model, loadModel } from '../../onnx/io';
import { extractFeatures, Features } from '../../probe/features';
import { sampleRows } from '../../probe/probe';
import { addHeads } from '../../heads/add';
import { fitEraser } from '../../erase/fit';
import { spliceEraser } from '../../erase/splice';
import { train } from '../../train/trainer';
import { withWeightsOf } from '../models';
import { GrlError } from '../../onnx/errors';
import { RANK_OF, RemovalMethod } from './config';
import type { ErasureContext } from './measure';

export interface RemovalResult {
  method: RemovalMethod;
  seed: number;
  model: Model;
  /** Directions removed (erasers), or undefined for GRL (a trained encoder, no projection). */
  rank?: number;
  /** GRL: per-step training curve (MLM and concept-adversary accuracy, λ). */
  curve?: { step: number; mlmAccuracy: number; conceptAccuracy: number; lambda: number }[];
  /** INLP: held-out accuracy of each iteration's classifier. */
  iterations?: number[];
  seconds: number;
}

const first = <T>(xs: T[], n: number): T[] => (n > 0 ? xs.slice(0, n) : xs);

/** The original encoder's encodings at `at` over the probe-training sentences (the erasers' fit data). */
export async function fitFeatures(ctx: ErasureContext, model: Model): Promise<Features> {
  const { cfg } = ctx;
  const f = await extractFeatures(model, first(ctx.train, cfg.probe.trainSentences), ctx.spec, {
    tensor: ctx.at, label: cfg.concept, tokenLevel: true, session: cfg.threads ? { intraOpNumThreads: cfg.threads } : undefined,
  });
  return sampleRows(f, cfg.probe.maxTrainRows, cfg.seeds.probe);
}

async function grl(ctx: ErasureContext, original: Model, seed: number, onStep?: (step: number, info: string) => void): Promise<Omit<RemovalResult, 'seconds'>> {
  const { cfg } = ctx;
  const c = cfg.concept;
  const { model } = addHeads(original, [{ name: c, classes: ctx.classes.concept, from: ctx.at, adversarial: cfg.grl.lambda }], { seed: cfg.seeds.head });
  const curve: NonNullable<RemovalResult['curve']> = [];
  const s = await train({
    model, data: cfg.data.train, trainExamples: ctx.train,
    losses: [{ head: ctx.mlm.head, kind: 'mlm' }, { head: c, weight: cfg.grl.conceptWeight }],
    lambdaSchedule: cfg.grl.lambdaSchedule, lr: cfg.grl.lr, steps: cfg.grl.steps, batchSize: cfg.grl.batchSize,
    seed, out: path.join(ctx.outDir, 'runs', `grl-seed${seed}`), threads: cfg.threads,
    mlm: { maskTokenId: ctx.masker.opts.maskTokenId, specialIds: [...new Set(ctx.masker.opts.specialIds)] },
  }, {
    onStep: (r) => {
      curve.push({ step: r.step, mlmAccuracy: r.accuracy[ctx.mlm.head], conceptAccuracy: r.accuracy[c], lambda: r.lambda[c] ?? NaN });
      onStep?.(r.step, `mlm acc ${(r.accuracy[ctx.mlm.head] * 100).toFixed(1)}% ${c} (adversary) acc ${(r.accuracy[c] * 100).toFixed(1)}% λ ${(r.lambda[c] ?? 0).toFixed(3)}`);
    },
  });
  // The trained encoder and MLM head in the original graph: no concept head, no GRL.
  return { method: 'grl', seed, model: withWeightsOf(original, loadModel(s.model)), curve };
}

async function projection(ctx: ErasureContext, original: Model, features: Features, method: Exclude<RemovalMethod, 'grl'>, seed: number, rank?: number): Promise<Omit<RemovalResult, 'seconds'>> {
  const { cfg } = ctx;
  const random = method === 'random' || method === 'random-leace';
  if (random && rank === undefined) throw new GrlError(`${method} needs the rank of ${RANK_OF[method]}: list ${RANK_OF[method]} in methods too`);
  const fit = await fitEraser(features, {
    method: random ? 'random' : method, numClasses: ctx.classes.concept, seed, rank: random ? rank : undefined,
    iterations: cfg.inlp.iterations, tolerance: cfg.inlp.tolerance, probe: { epochs: cfg.inlp.epochs },
    what: `${cfg.data.train}, label ${cfg.concept}`,
  });
  const { model } = spliceEraser(original, fit.eraser.method === method ? fit.eraser : { ...fit.eraser }, { tensor: ctx.at, fit: { label: cfg.concept, data: cfg.data.train, rows: features.rows, seed, stats: fit.stats } as never });
  return { method, seed, model, rank: fit.eraser.rank, iterations: fit.inlp?.iterations.map((it) => it.accuracy) };
}

/**
 * One removal. `rank` (random controls only) is the rank of the method they copy (RANK_OF) with the
 * same seed; LEACE has no seed (closed form) and is the same for every seed.
 */
export async function applyRemoval(
  ctx: ErasureContext, method: RemovalMethod, original: Model, features: Features, seed: number,
  opts: { rank?: number; onStep?: (step: number, info: string) => void } = {},
): Promise<RemovalResult> {
  const t0 = performance.now();
  const r = method === 'grl' ? await grl(ctx, original, seed, opts.onStep) : await projection(ctx, original, features, method, seed, opts.rank);
  return { ...r, seconds: Math.round((performance.now() - t0) / 10) / 100 };
}
