// Checkpoints, the format: ONNX Runtime's on-device training checkpoint, one flatbuffer
// with file identifier "ODTC" and root table `Checkpoint` from onnxruntime's
// onnxruntime/core/flatbuffers/schema/ort_training_checkpoint.fbs (which takes `Tensor`
// from ort.fbs). write.ts lays it out, read.ts reads it:
//
//   Checkpoint      { version:int32; module_state:ModuleState; optimizer_groups:[OptimizerGroup]; property_bag:PropertyBag }
//   ModuleState     { requires_grad_params:[Tensor]; frozen_params:[Tensor]; is_nominal_state:bool; has_external_data:bool }
//   OptimizerGroup  { group_name:string; step:int64; initial_learning_rate:float; optimizer_states:[ParameterOptimizerState] }
//   ParameterOptimizerState { param_name:string; momentums:[Tensor] }
//   PropertyBag     { ints:[IntProperty]; floats:[FloatProperty]; strings:[StringProperty] }   each {name; value}
//   Tensor (ort.fbs){ name:string; doc_string:string; dims:[int64]; data_type:int32; raw_data:[uint8]; string_data:[string] }
//
// Tensors are FLOAT with little-endian raw_data, aligned to 16 bytes in the file so a
// loaded checkpoint's values are zero-copy Float32Array views of the file buffer.
// Flatbuffers use 32-bit offsets, and their verifier caps a buffer at 2 GiB.

export const CHECKPOINT_IDENTIFIER = 'ODTC';
/** ORT's kCheckpointVersion (2 added ModuleState.is_nominal_state). */
export const CHECKPOINT_VERSION = 2;

/** Property-bag key holding grl-onnx's exact (float64) session settings as JSON. */
export const SESSION_PROPERTY = 'grl-onnx.session';

export interface NamedTensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

/**
 * A tensor whose values stay in the checkpoint file until read: a session copies each one
 * straight into its place in its buffers (read-file.ts).
 */
export interface TensorPayload {
  name: string;
  dims: number[];
  /** Number of float32 values. */
  length: number;
  /** Copy the values into `dst` (length `length`). */
  readInto(dst: Float32Array): void;
}

/** Tensors are NamedTensor (values in memory) or TensorPayload (values read on demand). */
export interface ParameterOptimizerState<T = NamedTensor> {
  paramName: string;
  /** ORT names them momentum0, momentum1 (AdamW: exp_avg, exp_avg_sq; SGD: the momentum buffer). */
  momentums: T[];
}

export interface OptimizerGroup<T = NamedTensor> {
  name: string;
  /** Optimizer steps taken so far. */
  step: number;
  initialLearningRate: number;
  states: ParameterOptimizerState<T>[];
}

export interface PropertyBag {
  ints: Record<string, number>;
  floats: Record<string, number>;
  strings: Record<string, string>;
}

export interface CheckpointState<T = NamedTensor> {
  version: number;
  trainable: T[];
  frozen: T[];
  optimizerGroups: OptimizerGroup<T>[];
  properties: PropertyBag;
}

/** The state's tensors as payloads read from memory (so a session fills its buffers one way). */
export function asPayloads(s: CheckpointState): CheckpointState<TensorPayload> {
  const payload = (t: NamedTensor): TensorPayload => ({ name: t.name, dims: t.dims, length: t.data.length, readInto: (dst) => dst.set(t.data) });
  return {
    ...s,
    trainable: s.trainable.map(payload),
    frozen: s.frozen.map(payload),
    optimizerGroups: s.optimizerGroups.map((g) => ({ ...g, states: g.states.map((p) => ({ paramName: p.paramName, momentums: p.momentums.map(payload) })) })),
  };
}

export function emptyProperties(): PropertyBag {
  return { ints: {}, floats: {}, strings: {} };
}
