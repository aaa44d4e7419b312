// Training artifacts: checkpoints in ONNX Runtime's on-device training format, so
// ORT tooling can read them. A checkpoint is one flatbuffer with file identifier
// "ODTC" and root table `Checkpoint` from onnxruntime's
// onnxruntime/core/flatbuffers/schema/ort_training_checkpoint.fbs (which takes
// `Tensor` from ort.fbs). The accessors below follow flatc's TypeScript output,
// written by hand against the maintained `flatbuffers` runtime:
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
// Writes go to a temp file that is renamed into place, so a kill -9 during a save
// leaves the previous checkpoint intact. Flatbuffers use 32-bit offsets: a
// checkpoint is limited to 2 GiB.
import * as fs from 'fs';
import { Builder, ByteBuffer } from 'flatbuffers';
import { DataType } from '../onnx/proto';
import { GrlError } from '../onnx/errors';
import { writeFileAtomic } from '../onnx/io';
import { numElements } from '../onnx/tensor';

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

export interface ParameterOptimizerState {
  paramName: string;
  /** ORT names them momentum0, momentum1 (AdamW: exp_avg, exp_avg_sq; SGD: the momentum buffer). */
  momentums: NamedTensor[];
}

export interface OptimizerGroup {
  name: string;
  /** Optimizer steps taken so far. */
  step: number;
  initialLearningRate: number;
  states: ParameterOptimizerState[];
}

export interface PropertyBag {
  ints: Record<string, number>;
  floats: Record<string, number>;
  strings: Record<string, string>;
}

export interface CheckpointState {
  version: number;
  trainable: NamedTensor[];
  frozen: NamedTensor[];
  optimizerGroups: OptimizerGroup[];
  properties: PropertyBag;
}

export function emptyProperties(): PropertyBag {
  return { ints: {}, floats: {}, strings: {} };
}

// ---------------------------------------------------------------- writing

function writeTensor(b: Builder, t: NamedTensor): number {
  const name = b.createString(t.name);
  b.startVector(8, t.dims.length, 8);
  for (let i = t.dims.length - 1; i >= 0; i--) b.addInt64(BigInt(t.dims[i]));
  const dims = b.endVector();
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  // Pad so the payload ends (and, the file length being aligned, starts) on 16 bytes.
  b.prep(16, bytes.length);
  const raw = b.createByteVector(bytes);
  b.startObject(6);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(2, dims, 0);
  b.addFieldInt32(3, DataType.FLOAT, 0);
  b.addFieldOffset(4, raw, 0);
  return b.endObject();
}

function offsetVector(b: Builder, offsets: number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

function writeProperties(b: Builder, p: PropertyBag): number {
  // Strings are created before the table that points at them (flatbuffers forbids nesting).
  const entry = (nameOff: number, addValue: () => void): number => {
    b.startObject(2);
    b.addFieldOffset(0, nameOff, 0);
    addValue();
    return b.endObject();
  };
  const ints = Object.entries(p.ints).map(([k, v]) => { const n = b.createString(k); return entry(n, () => b.addFieldInt64(1, BigInt(Math.trunc(v)), null)); });
  const floats = Object.entries(p.floats).map(([k, v]) => { const n = b.createString(k); return entry(n, () => b.addFieldFloat32(1, v, null)); });
  const strings = Object.entries(p.strings).map(([k, v]) => { const n = b.createString(k); const sv = b.createString(v); return entry(n, () => b.addFieldOffset(1, sv, 0)); });
  const iv = offsetVector(b, ints);
  const fv = offsetVector(b, floats);
  const sv = offsetVector(b, strings);
  b.startObject(3);
  b.addFieldOffset(0, iv, 0);
  b.addFieldOffset(1, fv, 0);
  b.addFieldOffset(2, sv, 0);
  return b.endObject();
}

function writeGroup(b: Builder, g: OptimizerGroup): number {
  const name = b.createString(g.name);
  const states = g.states.map((s) => {
    const pname = b.createString(s.paramName);
    const moms = offsetVector(b, s.momentums.map((m) => writeTensor(b, m)));
    b.startObject(2);
    b.addFieldOffset(0, pname, 0);
    b.addFieldOffset(1, moms, 0);
    return b.endObject();
  });
  const sv = offsetVector(b, states);
  b.startObject(4);
  b.addFieldOffset(0, name, 0);
  b.addFieldInt64(1, BigInt(g.step), null);
  b.addFieldFloat32(2, g.initialLearningRate, null);
  b.addFieldOffset(3, sv, 0);
  return b.endObject();
}

function payloadBytes(s: CheckpointState): number {
  let n = 0;
  for (const t of [...s.trainable, ...s.frozen]) n += t.data.byteLength + 64;
  for (const g of s.optimizerGroups) for (const p of g.states) for (const m of p.momentums) n += m.data.byteLength + 64;
  return n;
}

/** Encode a checkpoint. The result is a view into the builder's buffer. */
export function serializeCheckpoint(s: CheckpointState): Uint8Array {
  const total = payloadBytes(s) + (1 << 16);
  if (total >= 2 ** 31) throw new GrlError(`checkpoint too large for the ORT flatbuffer format (${total} bytes; the limit is 2 GiB)`);
  const b = new Builder(total);
  const req = offsetVector(b, s.trainable.map((t) => writeTensor(b, t)));
  const frozen = offsetVector(b, s.frozen.map((t) => writeTensor(b, t)));
  b.startObject(4);
  b.addFieldOffset(0, req, 0);
  b.addFieldOffset(1, frozen, 0);
  b.addFieldInt8(2, 0, null);
  b.addFieldInt8(3, 0, null);
  const module = b.endObject();
  const groups = offsetVector(b, s.optimizerGroups.map((g) => writeGroup(b, g)));
  const props = writeProperties(b, s.properties);
  b.startObject(4);
  b.addFieldInt32(0, s.version, null);
  b.addFieldOffset(1, module, 0);
  b.addFieldOffset(2, groups, 0);
  b.addFieldOffset(3, props, 0);
  b.finish(b.endObject(), CHECKPOINT_IDENTIFIER);
  return b.asUint8Array();
}

/** Write a checkpoint file atomically (temp file, fsync, rename). */
export function saveCheckpoint(s: CheckpointState, dest: string): void {
  writeFileAtomic(dest, serializeCheckpoint(s));
}

// ---------------------------------------------------------------- reading

/** A flatbuffer table: field k lives at vtable slot 4 + 2k. */
class Table {
  constructor(readonly bb: ByteBuffer, readonly pos: number) {}
  private off(field: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * field);
  }
  string(field: number): string | null {
    const o = this.off(field);
    return o ? (this.bb.__string(this.pos + o) as string) : null;
  }
  int32(field: number, dflt = 0): number {
    const o = this.off(field);
    return o ? this.bb.readInt32(this.pos + o) : dflt;
  }
  int64(field: number, dflt = 0): number {
    const o = this.off(field);
    return o ? Number(this.bb.readInt64(this.pos + o)) : dflt;
  }
  float32(field: number, dflt = 0): number {
    const o = this.off(field);
    return o ? this.bb.readFloat32(this.pos + o) : dflt;
  }
  bool(field: number): boolean {
    const o = this.off(field);
    return o ? this.bb.readInt8(this.pos + o) !== 0 : false;
  }
  table(field: number): Table | null {
    const o = this.off(field);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o)) : null;
  }
  tables(field: number): Table[] {
    const o = this.off(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    const n = this.bb.__vector_len(this.pos + o);
    return Array.from({ length: n }, (_, i) => new Table(this.bb, this.bb.__indirect(start + 4 * i)));
  }
  int64s(field: number): number[] {
    const o = this.off(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    return Array.from({ length: this.bb.__vector_len(this.pos + o) }, (_, i) => Number(this.bb.readInt64(start + 8 * i)));
  }
  bytes(field: number): Uint8Array {
    const o = this.off(field);
    if (!o) return new Uint8Array(0);
    const start = this.bb.__vector(this.pos + o);
    return this.bb.bytes().subarray(start, start + this.bb.__vector_len(this.pos + o));
  }
}

function readTensor(t: Table, where: string): NamedTensor {
  const name = t.string(0) ?? '';
  const dataType = t.int32(3);
  if (dataType !== DataType.FLOAT) throw new GrlError(`${where}: tensor '${name}' has data type ${DataType[dataType] ?? dataType}; grl-onnx checkpoints hold FLOAT tensors`);
  const dims = t.int64s(2);
  const raw = t.bytes(4);
  const n = numElements(dims);
  if (raw.byteLength !== n * 4) throw new GrlError(`${where}: tensor '${name}' has ${raw.byteLength} bytes of data for dims [${dims.join(', ')}] (${n * 4} expected)`);
  // A view when the payload is aligned (files we write are); otherwise one copy.
  const data = raw.byteOffset % 4 === 0 ? new Float32Array(raw.buffer, raw.byteOffset, n) : new Float32Array(raw.slice().buffer);
  return { name, dims, data };
}

/** Decode a checkpoint from a file path or bytes. Tensor data are views of the buffer when aligned. */
export function loadCheckpoint(src: string | Uint8Array, name?: string): CheckpointState {
  const where = typeof src === 'string' ? src : name ?? '<checkpoint buffer>';
  let bytes: Uint8Array;
  if (typeof src === 'string') {
    try {
      bytes = fs.readFileSync(src);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new GrlError(`${src}: cannot read checkpoint (${code === 'ENOENT' ? 'no such file' : code})`, { file: src });
    }
  } else {
    bytes = src;
  }
  if (bytes.byteLength < 8) throw new GrlError(`${where}: not an ORT training checkpoint (${bytes.byteLength} bytes)`, { file: where });
  const bb = new ByteBuffer(bytes);
  if (!bb.__has_identifier(CHECKPOINT_IDENTIFIER)) {
    const id = Buffer.from(bytes.subarray(4, 8)).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
    throw new GrlError(`${where}: not an ORT training checkpoint (file identifier '${id}', expected '${CHECKPOINT_IDENTIFIER}')`, { file: where });
  }
  try {
    const root = new Table(bb, bb.readInt32(bb.position()) + bb.position());
    const version = root.int32(0);
    const module = root.table(1);
    const trainable = (module?.tables(0) ?? []).map((t) => readTensor(t, where));
    const frozen = (module?.tables(1) ?? []).map((t) => readTensor(t, where));
    if (module?.bool(2)) throw new GrlError(`${where}: a nominal checkpoint (parameters without values) cannot be loaded for training`, { file: where });
    if (module?.bool(3)) throw new GrlError(`${where}: checkpoints with external data are not supported`, { file: where });
    const optimizerGroups = root.tables(2).map((g) => ({
      name: g.string(0) ?? '',
      step: g.int64(1),
      initialLearningRate: g.float32(2),
      states: g.tables(3).map((s) => ({ paramName: s.string(0) ?? '', momentums: s.tables(1).map((t) => readTensor(t, where)) })),
    }));
    const properties = emptyProperties();
    const bag = root.table(3);
    for (const p of bag?.tables(0) ?? []) properties.ints[p.string(0) ?? ''] = p.int64(1);
    for (const p of bag?.tables(1) ?? []) properties.floats[p.string(0) ?? ''] = p.float32(1);
    for (const p of bag?.tables(2) ?? []) properties.strings[p.string(0) ?? ''] = p.string(1) ?? '';
    return { version, trainable, frozen, optimizerGroups, properties };
  } catch (e) {
    if (e instanceof GrlError) throw e;
    throw new GrlError(`${where}: corrupt ORT training checkpoint (${(e as Error).message})`, { file: where, cause: e });
  }
}
