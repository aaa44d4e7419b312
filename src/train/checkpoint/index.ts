// Training checkpoints in ONNX Runtime's on-device training format (format.ts), so ORT
// tooling reads them: written front to back with the payloads streamed from the
// session's buffers (write.ts), read with zero-copy views (read.ts). Saves are atomic:
// a kill -9 during one leaves the previous checkpoint intact.
export * from './format';
export { loadCheckpoint } from './read';
export { layoutCheckpoint, serializeCheckpoint, saveCheckpoint } from './write';
export type { CheckpointLayout } from './write';
