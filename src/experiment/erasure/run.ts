// Experiment (erasure), runner: can a concept (POS) be removed from a
// pretrained encoder's representations, and what does removal cost the
// language model and the trainability of another task?
//   1. baseline on the original encoder: post-hoc concept probe (majority and
//      control baselines), MLM accuracy on masked dev tokens, target trainability;
//   2. removal by each method (GRL amnesic training with MLM kept, INLP, LEACE,
//      random directions of INLP's rank), once per seed where the method has one;
//   3. after each: the same three measurements on the encoder it produced.
// Never prints: progress goes through hooks, results into the returned report.
import * as fs from 'fs';
import { Model, loadModel } from '../../onnx/io';
import { GrlError } from '../../onnx/errors';
import { Graph } from '../../onnx/graph';
import { packageVersion } from '../../version';
import { DataSpec, Example } from '../../data/jsonl';
import { Masker } from '../../data/masking';
import { CorpusOptions, corpusForEval, corpusForModel, loadExamples, resolveLabelVocab } from '../../data/examples';
import { loadTokenizer } from '../../tokenize/tokenizer';
import { readHeadRecords } from '../../heads/metadata';
import { analyzeHeads } from '../../patch/heads';
import { ProbeReport, ProbeScores } from '../../probe/probe';
import { embeddingLimits } from '../../train/trainer';
import { headShape } from '../models';
import { Spread, majorityLabel, seconds, spread } from '../run';
import type { ExperimentHooks } from '../run';
import { ErasureConfig, RANK_OF, RemovalMethod } from './config';
import { ErasureContext, TrainabilityRun, maskedDev, mlmAccuracy, probeConcept, trainability } from './measure';
import { RemovalResult, applyRemoval, fitFeatures } from './methods';

/** The three measurements on one encoder. */
export interface Measurement {
  probe: ProbeReport;
  mlm: ProbeScores;
  trainability: TrainabilityRun;
}

export interface MethodRun {
  method: RemovalMethod;
  seed: number;
  rank?: number;
  iterations?: number[];
  curve?: RemovalResult['curve'];
  removalSeconds: number;
  after: Measurement;
}

/** Per method, each headline number as mean, min and max over the seeds. */
export interface MethodSummary {
  method: RemovalMethod;
  seeds: number[];
  probe: Spread;
  /** Probe accuracy above the majority baseline after removal. */
  leakage: Spread;
  control: Spread;
  selectivity: Spread;
  /** Share of the probe's advantage over majority that was removed (1 = down to majority). */
  removedFraction: Spread;
  mlmAccuracy: Spread;
  targetFinal: Spread;
  targetNonMajorityFinal: Spread;
  targetDevLoss: Spread;
  rank?: Spread;
}

export interface ErasureReport {
  kind: 'erasure';
  tool: { name: 'grl-onnx'; version: string };
  config: ErasureConfig;
  model: { path: string; tensor: string; dim?: number; concept: string; target: string; mlmHead: string; classes: { concept: number; target: number }; labelNames: Record<string, string[]> };
  data: { trainSentences: number; devSentences: number; testSentences: number; warnings: string[] };
  baseline: Measurement;
  runs: MethodRun[];
  summary: MethodSummary[];
  timings: Record<string, number>;
}

/** The MLM head (output `mlm_logits` or heads metadata kind 'mlm') and the tensor it reads. */
export function findMlmHead(model: Model): { head: string; output: string; from?: string } {
  const rec = readHeadRecords(model).find((h) => h.kind === 'mlm');
  if (rec) return { head: rec.name, output: rec.output, from: rec.from };
  const h = analyzeHeads(model).heads.find((x) => x.output === 'mlm_logits');
  if (!h) throw new GrlError(`${model.source}: the erasure experiment needs an encoder with an MLM head (an 'mlm_logits' output; add one with grl-onnx heads add --mlm)`, { file: model.source });
  return { head: h.name, output: h.output, from: h.spliceTensor };
}

/** Data, label spaces, masking and the probe tensor: everything the stages share. */
export function setupContext(cfg: ErasureConfig, model: Model, outDir: string, warnings: string[]): ErasureContext {
  const mlm = findMlmHead(model);
  const at = cfg.at ?? mlm.from ?? 'last_hidden_state';
  if (!new Graph(model.proto.graph ?? {}).producer(at)) throw new GrlError(`${model.source}: no tensor '${at}' to remove information at`, { file: model.source });
  const tok = loadTokenizer(cfg.tokenizer);
  if (tok.maskTokenId === null) throw new GrlError(`${cfg.tokenizer}: the tokenizer has no mask token; MLM accuracy needs one`, { file: cfg.tokenizer });
  const corpus: CorpusOptions = corpusForModel({ tokenizer: tok, labels: [`${cfg.concept}=${cfg.concept}`, `${cfg.target}=${cfg.target}`], onWarning: (w) => warnings.push(w) }, model);
  const vocab = resolveLabelVocab(cfg.data.train, corpus);
  const classes = { concept: vocab[cfg.concept].length, target: vocab[cfg.target].length };
  const g = model.proto.graph ?? {};
  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (g.input ?? []).map((i) => i.name ?? '').filter((n) => !inits.has(n));
  const optional: Record<string, number> = {};
  for (const n of inputs) if (n === 'attention_mask') optional[n] = 1; else if (n === 'token_type_ids') optional[n] = 0;
  const spec: DataSpec = {
    inputs, optionalInputs: optional, idLimits: embeddingLimits(model),
    labels: [{ key: cfg.concept, tokenLevel: true, numClasses: classes.concept }, { key: cfg.target, tokenLevel: true, numClasses: classes.target }],
  };
  const evalCorpus = corpusForEval({ ...corpus, labelsFrom: vocab }, cfg.data.train);
  const train = loadExamples(cfg.data.train, spec, { ...corpus, labelsFrom: vocab });
  const dev = loadExamples(cfg.data.dev, spec, evalCorpus);
  const test = loadExamples(cfg.data.test, spec, evalCorpus);
  const mlmVocab = headShape(model, { name: mlm.head, output: mlm.output } as never).numClasses;
  const masker = new Masker({ maskTokenId: tok.maskTokenId, vocabSize: Math.min(mlmVocab, tok.vocabSize), specialIds: tok.specialIds, padTokenId: tok.padTokenId, seed: cfg.seeds.mask });
  return {
    cfg, at, spec, classes, labelNames: vocab, train, dev, test, masker,
    mlm: { head: mlm.head, output: mlm.output, vocab: mlmVocab }, outDir,
    majority: { concept: majorityLabel(train, cfg.concept, classes.concept), target: majorityLabel(train, cfg.target, classes.target) },
  };
}

function summarize(method: RemovalMethod, runs: MethodRun[], baseline: Measurement): MethodSummary {
  const pb = baseline.probe;
  const above = pb.accuracy - pb.majority.accuracy;
  const s = (f: (r: MethodRun) => number) => spread(runs.map(f));
  return {
    method,
    seeds: runs.map((r) => r.seed),
    probe: s((r) => r.after.probe.accuracy),
    leakage: s((r) => r.after.probe.accuracy - r.after.probe.majority.accuracy),
    control: s((r) => r.after.probe.control?.accuracy ?? NaN),
    selectivity: s((r) => r.after.probe.selectivity ?? NaN),
    removedFraction: s((r) => (above > 0 ? (pb.accuracy - r.after.probe.accuracy) / above : 0)),
    mlmAccuracy: s((r) => r.after.mlm.accuracy),
    targetFinal: s((r) => r.after.trainability.finalDevAccuracy),
    targetNonMajorityFinal: s((r) => r.after.trainability.finalNonMajority),
    targetDevLoss: s((r) => r.after.trainability.finalDevLoss),
    ...(runs.every((r) => r.rank !== undefined) ? { rank: s((r) => r.rank as number) } : {}),
  };
}

export async function runErasureExperiment(cfg: ErasureConfig, outDir: string, hooks: ExperimentHooks = {}): Promise<ErasureReport> {
  const timings: Record<string, number> = {};
  const tAll = performance.now();
  const stage = (name: string, msg: string) => hooks.onStage?.(name, msg);
  if (!fs.existsSync(cfg.model)) throw new GrlError(`${cfg.model}: no such model (the erasure experiment needs the pretrained encoder with its MLM head)`, { file: cfg.model });
  const original = loadModel(cfg.model);
  findMlmHead(original);

  let t0 = performance.now();
  stage('data', `loading ${cfg.data.train}, ${cfg.data.dev}, ${cfg.data.test} through ${cfg.tokenizer}`);
  const warnings: string[] = [];
  const ctx = setupContext(cfg, original, outDir, warnings);
  for (const w of warnings) hooks.onWarning?.(w);
  const masked = maskedDev(ctx);
  // Inputs are valid: only now is the report folder claimed and written.
  hooks.beforeWrite?.();
  fs.mkdirSync(outDir, { recursive: true });
  timings.data = seconds(t0);

  const measure = async (label: string, model: Model, seed: number): Promise<Measurement> => {
    stage(label, `probing '${cfg.concept}' at ${ctx.at} (${cfg.probe.kind} probe + control), MLM accuracy on ${masked.length} masked dev sentences`);
    const probe = await probeConcept(ctx, model);
    const mlm = await mlmAccuracy(ctx, model, masked);
    stage(label, `trainability: a fresh '${cfg.target}' head, ${cfg.trainability.steps} steps (encoder trainable)`);
    const tr = await trainability(ctx, model, label, seed, (step, info) => hooks.onProgress?.(`${label}-trainability`, step, cfg.trainability.steps, info));
    return { probe, mlm, trainability: tr };
  };

  // 1. Baseline.
  t0 = performance.now();
  const seeds = cfg.seeds.train;
  const baseline = await measure('baseline', original, seeds[0]);
  timings.baseline = seconds(t0);

  // 2–3. Removal and measurements, per method and seed. The erasers are fit on the original
  // encodings (one extraction serves every projection method and seed).
  const needsFeatures = cfg.methods.some((m) => m !== 'grl');
  const features = needsFeatures ? await fitFeatures(ctx, original) : undefined;
  const runs: MethodRun[] = [];
  for (const method of cfg.methods) {
    t0 = performance.now();
    // LEACE is closed form; a random projection of the whole space is the zero map whatever its seed.
    const seedFree = (rank?: number) => method === 'leace' || (rank !== undefined && rank === features?.dim);
    const copied = RANK_OF[method];
    for (const seed of seeds) {
      const rank = copied ? (runs.find((r) => r.method === copied && r.seed === seed) ?? runs.find((r) => r.method === copied))?.rank : undefined;
      if (seedFree(rank) && runs.some((r) => r.method === method)) continue;
      const label = `${method}-seed${seed}`;
      stage(label, method === 'grl'
        ? `amnesic training, ${cfg.grl.steps} steps: GRL on '${cfg.concept}' (λ ${cfg.grl.lambda}, ${cfg.grl.lambdaSchedule}) with the MLM loss kept`
        : `fitting ${method}${rank !== undefined ? ` (rank ${rank}, ${copied}'s)` : ''} on ${features?.rows} '${cfg.concept}' tokens at ${ctx.at}`);
      const removal = await applyRemoval(ctx, method, original, features as never, seed, {
        rank, onStep: (step, info) => hooks.onProgress?.(label, step, cfg.grl.steps, info),
      });
      const after = await measure(label, removal.model, seed);
      runs.push({ method, seed, rank: removal.rank, iterations: removal.iterations, curve: removal.curve, removalSeconds: removal.seconds, after });
    }
    timings[method] = seconds(t0);
  }
  // Training folders keep only the trained models and metrics: artifacts and checkpoints can be regenerated.
  const runsDir = `${outDir}/runs`;
  if (fs.existsSync(runsDir)) for (const d of fs.readdirSync(runsDir)) for (const f of ['artifacts', 'checkpoint']) fs.rmSync(`${runsDir}/${d}/${f}`, { recursive: true, force: true });
  timings.total = seconds(tAll);
  return {
    kind: 'erasure',
    tool: { name: 'grl-onnx', version: packageVersion() },
    config: cfg,
    model: { path: cfg.model, tensor: ctx.at, dim: features?.dim, concept: cfg.concept, target: cfg.target, mlmHead: ctx.mlm.head, classes: ctx.classes, labelNames: ctx.labelNames },
    data: { trainSentences: ctx.train.length, devSentences: ctx.dev.length, testSentences: ctx.test.length, warnings },
    baseline,
    runs,
    summary: cfg.methods.map((m) => summarize(m, runs.filter((r) => r.method === m), baseline)),
    timings,
  };
}
