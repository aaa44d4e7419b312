// Training: the public surface of src/train (optimizer models, ORT-format
// checkpoints, schedules, artifacts in both layouts and the TrainingSession).
export * from './optimizer';
export * from './checkpoint';
export * from './schedules';
export * from './artifacts';
export * from './session';
export * from './layouts/ort';
