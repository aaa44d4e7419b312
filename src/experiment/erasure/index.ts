// Experiment (erasure): the public surface (config, runner, report).
export * from './config';
export * from './run';
export { writeErasureReport, erasureSummaryMarkdown, methodTable, METHOD_NAMES } from './report';
export type { ErasureContext, TrainabilityRun as ErasureTrainabilityRun } from './measure';
