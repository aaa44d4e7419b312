// grl-onnx: the programmatic API. Load and save ONNX models, inspect them,
// splice gradient-reversal layers, build gradient graphs in standard ONNX ops,
// train through a TrainingSession on stock onnxruntime-node, and probe what an
// encoder still encodes.

// Model I/O and the graph IR
export { loadModel, saveModel, serializeModel } from './onnx/io';
export type { Model, LoadOptions, SaveOptions } from './onnx/io';
export { Graph, opsetVersion, nodeLabel } from './onnx/graph';
export { GrlError, ModelFormatError, GraphError } from './onnx/errors';
export type { ModelProto, GraphProto, NodeProto, TensorProto } from './onnx/proto';

// Robustness: checker-grade validation, sequence limits, onnxruntime errors, run folders
export { validateModel, assertValidModel } from './onnx/validate';
export type { Finding } from './onnx/validate';
export { sequenceLimit, checkSequenceLength, checkBatchMemory, estimateTrainingBytes } from './onnx/limits';
export type { SequenceLimit } from './onnx/limits';
export { explainOrtError } from './onnx/ort-errors';
export { inferShapes, observeUnknownRanks, rankReport } from './onnx/shapes';
export type { ShapeHints, RankSource } from './onnx/shapes';
export { RunFolder } from './train/run-folder';

// Inspect and patch
export { inspectModel } from './inspect/inspect';
export type { InspectReport } from './inspect/inspect';
export { patchModel } from './patch/patch';
export type { PatchOptions, PatchResult, HeadSpec } from './patch/patch';
export { detectHeads, resolveHead } from './patch/heads';
export type { HeadInfo } from './patch/heads';
export { GRL_DOMAIN, GRL_OP } from './patch/grl';

// Task heads on an encoder export
export { addHeads, removeHead } from './heads/add';
export type { AddHeadSpec, AddHeadsOptions, AddHeadsResult, RemoveHeadResult } from './heads/add';
export { readHeadRecords } from './heads/metadata';
export type { HeadRecord, HeadKind } from './heads/metadata';
export { readLabelNames, withLabelNames } from './heads/labels';

// Gradients and training
export { buildTrainingGraph, differentiate, missingRules, supportedOps, UnsupportedOpError } from './grad';
export type { TrainingGraph, TrainingGraphOptions, LossOption, GradRule, RuleContext, RuleEntry } from './grad';
export { TrainingSession, generateArtifacts, writeArtifacts, buildOptimizerModel, saveCheckpoint, loadCheckpoint, lambdaAt, lrAt } from './train';
export type { TrainingSessionCreateOptions, CheckpointState, OptimizerKind, LrSchedule, LambdaSchedule } from './train';
export { openCheckpoint } from './train/checkpoint';
export type { CheckpointFile } from './train/checkpoint';
export type { ArtifactLayout, ArtifactOptions } from './train/artifacts';
export { toOrtTrainingModel, buildOrtOptimizerModel } from './train/layouts/ort';
export { train } from './train/trainer';
export type { TrainerOptions, TrainerHooks, StepRecord, EvalRecord, TrainSummary } from './train/trainer';
export { loadJsonl, makeBatch } from './data/jsonl';
export type { DataSpec, Example, Batch } from './data/jsonl';
export { Masker, EVAL_STREAM } from './data/masking';
export type { MaskingOptions, MaskedIds } from './data/masking';
export { mlmHeads } from './train/mlm';
export type { MlmOptions, MlmTokenizer } from './train/mlm';

// Tokenizers and corpora
export { loadTokenizer, alignWords, truncateEncoding } from './tokenize';
export type { TextTokenizer, Encoding, AlignOptions, Aligned } from './tokenize';
export { readCorpus, detectFormat, FORMATS } from './data/formats';
export type { Sentence, ColumnRequest, FormatName } from './data/formats';
export { prepareCorpus, prepareSentences, preparedJsonl, parseLabelRequest } from './data/prepare';
export type { PrepareOptions, Prepared, PreparedRecord, PrepareStats } from './data/prepare';
export { buildLabelVocab, readLabelVocab } from './data/labels';
export type { LabelVocab, LabelOrder } from './data/labels';
export { loadExamples } from './data/examples';
export type { CorpusOptions } from './data/examples';

// Evaluation metrics: per-class P/R/F1, macro-F1, confusion, seqeval-style entity spans
export { ClassCounts, SpanCounts, HeadScorer, chunks, parseTag, isSpanLabelSet, scoreRows } from './metrics';
export type { ClassReport, ClassRow, SpanReport, SpanTypeRow, HeadScores } from './metrics';

// Probing and the amnesic experiment
export { extractFeatures, majorityBaseline, controlTask, trainProbe, runProbe } from './probe';
export type { Features } from './probe';
export { runExperiment, defaultConfig, runErasureExperiment, resolveErasureConfig, defaultErasureConfig, writeErasureReport, experimentKind, REMOVAL_METHODS } from './experiment';
export type { ExperimentReport, ErasureConfig, ErasureReport, RemovalMethod, MethodRun, MethodSummary, ExperimentKind } from './experiment';

// Concept erasure (LEACE, INLP, random directions) spliced as ONNX nodes
export { fitEraser, fitLeace, LeaceFitter, fitInlp, randomEraser, applyEraser, denseEraser, spliceEraser, removeEraser, removeErasers, readErasers, eraseModel } from './erase';
export type { Eraser, EraseMethod, FitEraserOptions, FitEraserResult, EraserRecord, EraseModelOptions, EraseModelResult } from './erase';
