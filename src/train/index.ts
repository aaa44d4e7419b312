// Training: the public surface of src/train (optimizer models, ORT-format
// checkpoints, schedules, artifacts and the TrainingSession).
export * from './optimizer';
export * from './checkpoint';
export * from './schedules';
export * from './artifacts';
export * from './session';
