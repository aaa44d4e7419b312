// Experiment: the public surface of src/experiment (config, runner, report).
export * from './config';
export * from './run';
export * from './report';
export { freshHead, headParameters, headScores, withWeightsOf, taggerSpec } from './models';
export { experimentKind } from './kind';
export type { ExperimentKind } from './kind';
export { runErasureExperiment, resolveErasureConfig, defaultErasureConfig, writeErasureReport, REMOVAL_METHODS } from './erasure';
export type { ErasureConfig, ErasureReport, RemovalMethod, MethodRun, MethodSummary } from './erasure';
