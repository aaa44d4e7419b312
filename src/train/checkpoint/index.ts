// Training checkpoints in ONNX Runtime's on-device training format (format.ts), so ORT
// tooling reads them: written front to back with the payloads streamed from the
// session's buffers (write.ts), read with zero-copy views (read.ts), or
// from a file with the values left there until a session copies them in place (read-file.ts). Saves are atomic:
// a kill -9 during one leaves the previous checkpoint intact.
export * from './format';
export { loadCheckpoint } from './read';
export { openCheckpoint } from './read-file';
export type { CheckpointFile } from './read-file';
export { layoutCheckpoint, serializeCheckpoint, saveCheckpoint } from './write';
export type { CheckpointLayout } from './write';
