// Training, before the first step: everything `grl-onnx train` checks and writes
// before it trains. A new run loads and validates the model, patches GRLs, builds
// the training graph; a resumed one reads its artifacts. Then all data is loaded and
// validated, and only then is the run folder claimed and the artifacts written.
//
// What this returns is deliberately small: the model, its training graph protos and
// the file buffer behind its weights go out of scope here, so a run holds only the
// session's buffers while it trains (at BERT-base size the model file alone is 438 MB).
import * as fs from 'fs';
import * as path from 'path';
import { Model, loadModel } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { patchModel } from '../patch/patch';
import { buildTrainingGraph, TrainingGraph } from '../grad/training';
import { observeUnknownRanks } from '../onnx/shapes';
import { writeArtifacts, ARTIFACT_FILES, readArtifactsMetadata } from './artifacts';
import { DataSpec, Example } from '../data/jsonl';
import { corpusForEval, corpusForModel, loadExamples } from '../data/examples';
import { checkBatchMemory, sequenceLimit } from '../onnx/limits';
import { RunFolder } from './run-folder';
import { assertValidModel } from '../onnx/validate';
import { MlmSetup, corpusFor, feedSpec, mlmHeads, readSpec, setupMlm } from './mlm';
import { embeddingLimits, mseLayouts, dataSpecFor } from './feeds';
import { evalLabelNames } from './evaluate';
import type { TrainerHooks, TrainerOptions } from './trainer';

/** The parts of a training graph the loop reads (names and head layouts, no protos). */
export type RunGraph = Pick<TrainingGraph, 'modelInputs' | 'heads' | 'outputs' | 'lambdas' | 'params'>;

export interface RunPlan {
  graph: RunGraph;
  /** How batches are built and fed (MLM labels included: the masking makes them). */
  spec: DataSpec;
  mlm: MlmSetup | undefined;
  trainSet: Example[];
  evalSet: Example[] | undefined;
  /** Per head, the label names the eval lines report (model metadata, else the corpus's label vocabulary). */
  labelNames: Record<string, string[] | undefined>;
}

/** The files of a run folder. */
export const RUN_FILES = { artifacts: 'artifacts', checkpoint: 'checkpoint', model: 'model.onnx', metrics: 'metrics.jsonl', config: 'run.json' } as const;

interface RunSource {
  graph: RunGraph;
  /** The model whose inputs and outputs the data must fit (the artifacts' inference model when resuming). */
  shapesFrom: Model;
  /** Writes the artifacts of a new run (nothing when resuming). */
  writeArtifacts: () => void;
}

function slim(tg: RunGraph): RunGraph {
  return { modelInputs: tg.modelInputs, heads: tg.heads, outputs: tg.outputs, lambdas: tg.lambdas, params: tg.params };
}

function resumedSource(folder: RunFolder, opts: TrainerOptions): RunSource {
  const artifactsDir = path.join(folder.dir, RUN_FILES.artifacts);
  const meta = readArtifactsMetadata(artifactsDir);
  if (!meta || !fs.existsSync(path.join(folder.dir, RUN_FILES.checkpoint))) {
    throw new GrlError(`${opts.resume}: nothing to resume (no ${RUN_FILES.checkpoint} or ${RUN_FILES.artifacts}/ from an earlier run)`, { file: opts.resume });
  }
  return { graph: slim(meta), shapesFrom: loadModel(path.join(artifactsDir, ARTIFACT_FILES.inferenceModel)), writeArtifacts: () => {} };
}

async function newSource(folder: RunFolder, opts: TrainerOptions): Promise<RunSource> {
  let model = typeof opts.model === 'string' ? loadModel(opts.model) : opts.model;
  assertValidModel(model);
  // The run writes these files; none may be the input's external data.
  folder.refuseInputs(undefined, model, [RUN_FILES.model, `${RUN_FILES.model}.data`, RUN_FILES.checkpoint, RUN_FILES.metrics, RUN_FILES.config]);
  if (opts.heads?.length) model = patchModel(model, { heads: opts.heads }).model;
  // Ranks static inference cannot decide are read from one onnxruntime forward (no run when all are known).
  const { hints: shapeHints } = await observeUnknownRanks(model);
  const built = buildTrainingGraph(model, {
    shapeHints,
    losses: opts.losses.map((l) => ({ head: l.head, weight: l.weight ?? 1, kind: l.kind === 'mlm' ? 'ce' : l.kind })),
    freeze: opts.freeze,
    trainable: opts.trainable,
    rowSparseGradients: true,
  });
  const optimizer = opts.optimizer ?? 'adamw';
  const patched = model;
  const writeRunArtifacts = () => writeArtifacts(patched, built, {
    optimizer,
    learningRate: opts.lr,
    hyperparameters: {
      ...(opts.weightDecay !== undefined ? { weightDecay: opts.weightDecay } : optimizer === 'sgd' ? { weightDecay: 0 } : {}),
      ...(opts.momentum !== undefined ? { momentum: opts.momentum } : {}),
      maxGradNorm: opts.gradClip ?? 0,
    },
  }, path.join(folder.dir, RUN_FILES.artifacts));
  return { graph: slim(built), shapesFrom: model, writeArtifacts: writeRunArtifacts };
}

/**
 * Validate a run's inputs (model or artifacts, data, eval data), then claim the folder and
 * write the artifacts. Nothing is written before every input is known good.
 */
export async function prepareRun(folder: RunFolder, opts: TrainerOptions, hooks: TrainerHooks): Promise<RunPlan> {
  const src = opts.resume ? resumedSource(folder, opts) : await newSource(folder, opts);
  const { graph, shapesFrom } = src;
  const limits = embeddingLimits(shapesFrom);
  const mlm = setupMlm(mlmHeads(opts.losses, graph.heads, shapesFrom), graph, limits, { mlm: opts.mlm, tokenizer: opts.corpus?.tokenizer, seed: opts.seed });
  const spec: DataSpec = { ...feedSpec(dataSpecFor(graph, limits, mseLayouts(shapesFrom, graph.heads)), mlm), sequenceLimit: sequenceLimit(shapesFrom), truncate: opts.truncate };
  // MLM labels are not in the data: the masking makes them.
  const dataSpec = readSpec(spec, mlm);
  const corpus = opts.corpus && corpusForModel(opts.corpus, shapesFrom);
  const trainSet = opts.trainExamples ?? loadExamples(opts.data, dataSpec, corpusFor(opts.data, corpus, dataSpec));
  const evalData = opts.evalExamples ?? (opts.eval ? loadExamples(opts.eval, dataSpec, corpusFor(opts.eval, corpus && corpusForEval(corpus, opts.data), dataSpec)) : undefined);
  const evalSet = evalData && mlm ? mlm.eval(evalData) : evalData;
  const labelNames = evalSet ? evalLabelNames(shapesFrom, graph.heads, corpus && !opts.trainExamples ? { options: corpus, data: opts.data } : undefined) : {};
  checkBatchMemory(shapesFrom, Math.min(opts.batchSize, trainSet.length), trainSet.reduce((m, e) => Math.max(m, e.length), 1));
  folder.claim();
  for (const n of folder.notes) hooks.onWarning?.(n);
  src.writeArtifacts();
  return { graph, spec, mlm, trainSet, evalSet, labelNames };
}
