// Training artifacts: `grl-onnx artifacts` writes ONNX Runtime's on-device training
// layout into a folder, so anyone who knows ORT recognises it:
//
// Two layouts share these file names. 'grl' (the default) is what grl-onnx's TrainingSession
// runs fastest; 'ort' (layouts/ort.ts) is what ONNX Runtime's own training builds run, and
// TrainingSession runs it too.
//
//   training_model.onnx   forward + losses + backward (`<param>_grad` outputs; with
//                         rowSparseGradients an embedding table's gradient is row-sparse,
//                         `<param>_grad_rows` + `_grad_indices`, which TrainingSession reads)
//   eval_model.onnx       forward + losses, no gradients
//   optimizer_model.onnx  AdamW or SGD over one flat parameter vector (optimizer.ts);
//                         with --layout ort, ORT's AdamWOptimizer / SGDOptimizerV2 node
//   checkpoint            ORT flatbuffer checkpoint: parameters, frozen parameters, settings
//   inference_model.onnx  the original model, for exportModelForInferencing
//   artifacts.json        the TrainingGraph metadata (params order, heads, λ inputs, outputs)
//
// Every file is written to a temp name and renamed, so an interrupted run never
// leaves a half-written artifact behind.
//
// A model with external data: each graph keeps its external initializers (frozen
// parameters, big constants) external, in its own `<graph>.onnx.data` in this folder,
// referenced by a bare file name. The folder is then self-contained and movable, and
// nothing reads the input model's data file after generation (inlining instead would
// break the 2 GB protobuf limit for exactly the models that use external data).
// Trainable parameters live in the checkpoint.
import * as fs from 'fs';
import * as path from 'path';
import { GrlError } from '../onnx/errors';
import { Model, saveModel, writeFileAtomic } from '../onnx/io';
import { ModelProto } from '../onnx/proto';
import { tensorToFloat32 } from '../onnx/tensor';
import { TrainingGraph, TrainingGraphOptions, buildTrainingGraph } from '../grad/training';
import { CHECKPOINT_VERSION, CheckpointState, NamedTensor, SESSION_PROPERTY, emptyProperties, saveCheckpoint } from './checkpoint';
import { OptimizerHyperparameters, OptimizerKind, buildOptimizerModel, defaultHyperparameters } from './optimizer';
import { ROW_SPARSE_REFUSAL, buildOrtOptimizerModel, checkOrtLayout, toOrtTrainingModel } from './layouts/ort';

/** 'grl': grl-onnx's own layout; 'ort': ONNX Runtime's training layout (layouts/ort.ts). */
export type ArtifactLayout = 'grl' | 'ort';

/** File names of ORT's artifact layout, plus our inference model and metadata. */
export const ARTIFACT_FILES = {
  checkpoint: 'checkpoint',
  trainModel: 'training_model.onnx',
  evalModel: 'eval_model.onnx',
  optimizerModel: 'optimizer_model.onnx',
  inferenceModel: 'inference_model.onnx',
  metadata: 'artifacts.json',
} as const;

export interface ArtifactOptions extends TrainingGraphOptions {
  optimizer?: OptimizerKind;
  /** Base learning rate stored in the checkpoint (default 1e-3). */
  learningRate?: number;
  hyperparameters?: Partial<OptimizerHyperparameters>;
  /** Default 'grl'. */
  layout?: ArtifactLayout;
}

/** artifacts.json: what a session or trainer needs beyond ORT's files. */
export interface ArtifactsMetadata {
  format: 'grl-onnx-artifacts';
  version: 1;
  /** Absent in folders written before layouts existed: 'grl'. */
  layout?: ArtifactLayout;
  source: string;
  optimizer: OptimizerKind;
  learningRate: number;
  hyperparameters: OptimizerHyperparameters;
  params: TrainingGraph['params'];
  modelInputs: string[];
  heads: TrainingGraph['heads'];
  lambdas: TrainingGraph['lambdas'];
  outputs: TrainingGraph['outputs'];
  files: typeof ARTIFACT_FILES;
}

function asModel(proto: ModelProto, original: Model, what: string): Model {
  return { proto, source: `${original.source} (${what})`, baseDir: original.baseDir, unknownFields: [] };
}

/** The initial checkpoint: parameter values from the original model, settings in the property bag. */
export function initialCheckpoint(original: Model, tg: TrainingGraph, settings: { optimizer: OptimizerKind; learningRate: number; hyperparameters: OptimizerHyperparameters }): CheckpointState {
  const inits = new Map((original.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const value = (name: string): NamedTensor => {
    const t = inits.get(name);
    if (!t) throw new GrlError(`${original.source}: parameter '${name}' is not an initializer of the model`, { file: original.source });
    const p = tg.params.find((q) => q.name === name);
    return { name, dims: p?.dims ?? [], data: tensorToFloat32(t, original.baseDir) };
  };
  const properties = emptyProperties();
  const lambdas: Record<string, number> = {};
  for (const l of tg.lambdas) {
    lambdas[l.head] = l.default;
    properties.floats[l.input] = l.default;
  }
  properties.strings[SESSION_PROPERTY] = JSON.stringify({ ...settings, lambdas });
  properties.strings['optimizer'] = settings.optimizer;
  properties.floats['learning_rate'] = settings.learningRate;
  return {
    version: CHECKPOINT_VERSION,
    trainable: tg.params.filter((p) => p.trainable).map((p) => value(p.name)),
    frozen: tg.params.filter((p) => !p.trainable).map((p) => value(p.name)),
    // Like ORT's generated checkpoints: no optimizer state yet (the session starts it at zero).
    optimizerGroups: [],
    properties,
  };
}

/** Write the artifacts of an already built training graph. */
export function writeArtifacts(original: Model, tg: TrainingGraph, opts: Omit<ArtifactOptions, keyof TrainingGraphOptions>, outDir: string): ArtifactsMetadata {
  const optimizer = opts.optimizer ?? 'adamw';
  const layout = opts.layout ?? 'grl';
  const settings = {
    optimizer,
    learningRate: opts.learningRate ?? 1e-3,
    hyperparameters: { ...defaultHyperparameters(optimizer), ...opts.hyperparameters },
  };
  if (layout === 'ort') checkOrtLayout(tg, optimizer, settings.hyperparameters);
  // saveModel refuses models with fields our schema does not know; find out before writing anything.
  if (original.unknownFields.length) {
    throw new GrlError(`${original.source}: refusing to write artifacts: it has fields unknown to grl-onnx's ONNX schema (${original.unknownFields.slice(0, 3).join(', ')})`, { file: original.source });
  }
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new GrlError(`${outDir}: cannot create the artifacts folder (${(e as NodeJS.ErrnoException).code})`, { file: outDir });
  }
  const at = (f: string) => path.join(outDir, f);
  // The weights are read before any save: when `original` is this folder's own
  // inference_model.onnx, saving it in place deletes the external data they come from.
  const checkpoint = initialCheckpoint(original, tg, settings);
  const training = layout === 'ort' ? toOrtTrainingModel(tg) : tg.training;
  const optimizerModel = layout === 'ort' ? buildOrtOptimizerModel(optimizer, settings.hyperparameters) : buildOptimizerModel(optimizer);
  saveModel(asModel(training, original, 'training graph'), at(ARTIFACT_FILES.trainModel));
  saveModel(asModel(tg.eval, original, 'eval graph'), at(ARTIFACT_FILES.evalModel));
  saveModel(asModel(optimizerModel, original, 'optimizer'), at(ARTIFACT_FILES.optimizerModel));
  saveModel(original, at(ARTIFACT_FILES.inferenceModel));
  saveCheckpoint(checkpoint, at(ARTIFACT_FILES.checkpoint));
  const meta: ArtifactsMetadata = {
    format: 'grl-onnx-artifacts',
    version: 1,
    layout,
    source: original.source,
    ...settings,
    params: tg.params,
    modelInputs: tg.modelInputs,
    heads: tg.heads,
    lambdas: tg.lambdas,
    outputs: tg.outputs,
    files: ARTIFACT_FILES,
  };
  writeFileAtomic(at(ARTIFACT_FILES.metadata), `${JSON.stringify(meta, null, 1)}\n`);
  return meta;
}

/** Build the training graph of `model` and write ORT's artifact layout into `outDir`. */
export function generateArtifacts(model: Model, opts: ArtifactOptions, outDir: string): ArtifactsMetadata {
  const { optimizer, learningRate, hyperparameters, layout, ...graphOpts } = opts;
  if (layout === 'ort' && graphOpts.rowSparseGradients) {
    throw new GrlError(ROW_SPARSE_REFUSAL);
  }
  const tg = buildTrainingGraph(model, graphOpts);
  return writeArtifacts(model, tg, { optimizer, learningRate, hyperparameters, layout }, outDir);
}

export function readArtifactsMetadata(dir: string): ArtifactsMetadata | undefined {
  const file = path.join(dir, ARTIFACT_FILES.metadata);
  if (!fs.existsSync(file)) return undefined;
  try {
    const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as ArtifactsMetadata;
    if (meta.format !== 'grl-onnx-artifacts') throw new Error(`format is '${meta.format}'`);
    return meta;
  } catch (e) {
    throw new GrlError(`${file}: not a grl-onnx artifacts.json (${(e as Error).message})`, { file });
  }
}
