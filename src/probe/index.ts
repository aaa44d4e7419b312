// Probing: the public surface of src/probe (features, baselines, probe training).
export * from './features';
export * from './baselines';
export * from './probe';
