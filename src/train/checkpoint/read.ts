// Checkpoints, reading: a flatbuffer accessor written by hand after flatc's TypeScript
// output, against the maintained `flatbuffers` runtime. Parsing goes through the few
// ByteBuffer methods in FlatBytes, so the same code reads a buffer in memory (loadCheckpoint:
// tensor values are views of the file buffer when aligned, as in files grl-onnx writes, so
// a caller that keeps only copies lets the buffer go) or a file through positioned reads
// (read-file.ts: values stay in the file until a session copies them into its buffers).
import * as fs from 'fs';
import { ByteBuffer } from 'flatbuffers';
import { DataType } from '../../onnx/proto';
import { GrlError } from '../../onnx/errors';
import { numElements } from '../../onnx/tensor';
import { CHECKPOINT_IDENTIFIER, CheckpointState, NamedTensor, emptyProperties } from './format';

/** What the parser reads through: flatbuffers' ByteBuffer has them; read-file.ts' PagedFile too. */
export interface FlatBytes {
  /** The size of the file (or buffer) in bytes. */
  capacity(): number;
  position(): number;
  readInt8(offset: number): number;
  readInt32(offset: number): number;
  readInt64(offset: number): bigint;
  readFloat32(offset: number): number;
  __offset(bbPos: number, vtableOffset: number): number;
  __string(offset: number): string | Uint8Array;
  __indirect(offset: number): number;
  __vector(offset: number): number;
  __vector_len(offset: number): number;
}

/**
 * The bytes a parse may read, checked before each vector or string is read: everything lies
 * inside the file, and the vectors and strings read add up to no more than the file's size
 * (in a well-formed checkpoint each is read once). A crafted count or length, or a vector
 * of offsets all pointing at one big table, then fails instead of allocating without bound.
 */
class Budget {
  private left: number;
  constructor(readonly size: number) {
    this.left = size;
  }
  /** Throws unless `count` items of `width` bytes from byte `start` lie in the file; charges them. */
  take(what: string, start: number, count: number, width: number): void {
    if (!(count >= 0) || !(start >= 0) || start + count * width > this.size) {
      throw new Error(`${what} of ${count} at byte ${start} runs past the end of the ${this.size}-byte file`);
    }
    this.left -= count * width;
    if (this.left < 0) throw new Error(`its vectors and strings add up to more than the file's ${this.size} bytes (overlapping offsets)`);
  }
  /** Throws unless a table (its soffset at `pos`) lies in the file. */
  table(pos: number): number {
    if (!(pos >= 0) || pos + 4 > this.size) throw new Error(`table at byte ${pos} outside the ${this.size}-byte file`);
    return pos;
  }
}

/** A flatbuffer table: field k lives at vtable slot 4 + 2k. */
class Table {
  readonly pos: number;
  constructor(readonly bb: FlatBytes, readonly budget: Budget, pos: number) {
    this.pos = budget.table(pos);
  }
  private off(field: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * field);
  }
  private at(field: number): Table {
    return new Table(this.bb, this.budget, this.bb.__indirect(this.pos + this.off(field)));
  }
  string(field: number): string | null {
    const o = this.off(field);
    if (!o) return null;
    const start = this.pos + o + this.bb.readInt32(this.pos + o);
    this.budget.take('string', start + 4, this.bb.readInt32(start), 1);
    return this.bb.__string(this.pos + o) as string;
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
    return this.off(field) ? this.at(field) : null;
  }
  /** A vector field's start and length, charged to the budget (checked against the file) before any element is read. */
  private checkedVector(field: number, what: string, elementSize: number): { start: number; n: number } | undefined {
    const o = this.off(field);
    if (!o) return undefined;
    const start = this.bb.__vector(this.pos + o);
    const n = this.bb.__vector_len(this.pos + o);
    this.budget.take(what, start, n, elementSize);
    return { start, n };
  }
  tables(field: number): Table[] {
    const v = this.checkedVector(field, 'vector', 4);
    return v ? Array.from({ length: v.n }, (_, i) => new Table(this.bb, this.budget, this.bb.__indirect(v.start + 4 * i))) : [];
  }
  int64s(field: number): number[] {
    const v = this.checkedVector(field, 'int64 vector', 8);
    return v ? Array.from({ length: v.n }, (_, i) => Number(this.bb.readInt64(v.start + 8 * i))) : [];
  }
  /** Where a [uint8] field's bytes lie (byte offset and length as recorded). */
  vector(field: number): { start: number; length: number } {
    const o = this.off(field);
    if (!o) return { start: 0, length: 0 };
    const start = this.bb.__vector(this.pos + o);
    const length = this.bb.__vector_len(this.pos + o);
    // Past the end is the payload check's to report (a truncated file); before the start is not a place.
    if (!(start >= 0 && length >= 0)) throw new Error(`byte vector of ${length} at byte ${start} outside the ${this.budget.size}-byte file`);
    return { start, length };
  }
}

/** Makes a checkpoint tensor from a tensor's name, dims and where its raw_data lies. */
export type TensorMaker<T> = (name: string, dims: number[], raw: { start: number; length: number }) => T;

function readTensor<T>(t: Table, where: string, make: TensorMaker<T>): T {
  const name = t.string(0) ?? '';
  const dataType = t.int32(3);
  if (dataType !== DataType.FLOAT) throw new GrlError(`${where}: tensor '${name}' has data type ${DataType[dataType] ?? dataType}; grl-onnx checkpoints hold FLOAT tensors`);
  const dims = t.int64s(2);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new GrlError(`${where}: tensor '${name}' has dims [${dims.join(', ')}]`, { file: where });
  return make(name, dims, t.vector(4));
}

/** Throws unless `byteLength` bytes hold the float32 values of `dims`; returns their count. */
export function checkPayload(where: string, name: string, dims: number[], byteLength: number): number {
  const n = numElements(dims);
  if (byteLength !== n * 4) throw new GrlError(`${where}: tensor '${name}' has ${byteLength} bytes of data for dims [${dims.join(', ')}] (${n * 4} expected)`);
  return n;
}

/** Throws unless the bytes start with a checkpoint's file identifier. */
export function checkIdentifier(where: string, size: number, bb: FlatBytes & { __has_identifier(id: string): boolean }, idBytes: () => Uint8Array): void {
  if (size < 8) throw new GrlError(`${where}: not an ORT training checkpoint (${size} bytes)`, { file: where });
  if (!bb.__has_identifier(CHECKPOINT_IDENTIFIER)) {
    const id = Buffer.from(idBytes()).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
    throw new GrlError(`${where}: not an ORT training checkpoint (file identifier '${id}', expected '${CHECKPOINT_IDENTIFIER}')`, { file: where });
  }
}

/** Decode the checkpoint's flatbuffer structure; each tensor comes from `make`. Errors are one line naming `where`. */
export function parseCheckpoint<T>(bb: FlatBytes, where: string, make: TensorMaker<T>): CheckpointState<T> {
  try {
    const root = new Table(bb, new Budget(bb.capacity()), bb.readInt32(bb.position()) + bb.position());
    const version = root.int32(0);
    const module = root.table(1);
    const tensor = (t: Table) => readTensor(t, where, make);
    const trainable = (module?.tables(0) ?? []).map(tensor);
    const frozen = (module?.tables(1) ?? []).map(tensor);
    if (module?.bool(2)) throw new GrlError(`${where}: a nominal checkpoint (parameters without values) cannot be loaded for training`, { file: where });
    if (module?.bool(3)) throw new GrlError(`${where}: checkpoints with external data are not supported`, { file: where });
    const optimizerGroups = root.tables(2).map((g) => ({
      name: g.string(0) ?? '',
      step: g.int64(1),
      initialLearningRate: g.float32(2),
      states: g.tables(3).map((s) => ({ paramName: s.string(0) ?? '', momentums: s.tables(1).map(tensor) })),
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
  const bb = new ByteBuffer(bytes);
  checkIdentifier(where, bytes.byteLength, bb, () => bytes.subarray(4, 8));
  return parseCheckpoint(bb, where, (name, dims, { start, length }): NamedTensor => {
    const raw = bytes.subarray(start, start + length);
    const n = checkPayload(where, name, dims, raw.byteLength);
    // A view when the payload is aligned (files we write are); otherwise one copy.
    const data = raw.byteOffset % 4 === 0 ? new Float32Array(raw.buffer, raw.byteOffset, n) : new Float32Array(raw.slice().buffer);
    return { name, dims, data };
  });
}
