// Gradient builder: the public surface of src/grad (reverse-mode driver,
// losses, parameter selection and the training/eval graph builder).
export { differentiate, differentiablePath, missingRules, topoOrder } from './backward';
export type { DifferentiateOptions, Differentiated, DifferentiablePath } from './backward';
export { buildLoss, crossEntropy, meanSquaredError } from './losses';
export type { LossKind, LossSpec, LossTensors, LossNames } from './losses';
export { buildTrainingGraph } from './training';
export type { TrainingGraph, TrainingGraphOptions, LossOption, RowGradientOutputs } from './training';
export { compilePattern, selectTrainable } from './select';
export type { NamePattern, Selection } from './select';
export { findRule, supportedOps } from './rules';
export { UnsupportedOpError } from './types';
export type { Dim, GradRule, RuleContext, RuleEntry, ShapeInfo } from './types';
export { Emitter } from './emit';
export { unbroadcast } from './unbroadcast';
