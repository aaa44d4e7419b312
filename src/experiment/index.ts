// Experiment: the public surface of src/experiment (config, runner, report).
export * from './config';
export * from './run';
export * from './report';
export { freshHead, headParameters, headScores, withWeightsOf, taggerSpec } from './models';
