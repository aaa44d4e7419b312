// Model I/O, layer 1: tensors. Element types, sizes, reading a TensorProto's
// values (raw_data, typed fields or external data) and making new tensors.
import * as fs from 'fs';
import { DataType, DATA_LOCATION_EXTERNAL, Int64, TensorProto, toNumber } from './proto';
import { ModelFormatError } from './errors';
import { externalDataPath } from './external-path';

/** Bytes per element; 0 for types that are not fixed-size (string) or sub-byte (int4). */
export function elementSize(dt: number): number {
  switch (dt) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: case DataType.COMPLEX64: return 8;
    case DataType.COMPLEX128: return 16;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 2;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL:
    case DataType.FLOAT8E4M3FN: case DataType.FLOAT8E4M3FNUZ: case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ: case DataType.FLOAT8E8M0: return 1;
    default: return 0;
  }
}

export function dataTypeName(dt: number): string {
  return DataType[dt] ?? `DataType(${dt})`;
}

export function isFloatType(dt: number): boolean {
  return dt === DataType.FLOAT || dt === DataType.DOUBLE || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16;
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d));
}

export function numElements(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function isExternal(t: TensorProto): boolean {
  return t.data_location === DATA_LOCATION_EXTERNAL;
}

export interface ExternalRef { location: string; offset: number; length: number | undefined }

export function externalRef(t: TensorProto): ExternalRef {
  const kv = new Map((t.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new ModelFormatError(t.name ?? '?', `tensor '${t.name}' is external but has no 'location'`);
  const len = kv.get('length');
  return { location, offset: Number(kv.get('offset') ?? 0), length: len === undefined ? undefined : Number(len) };
}

/**
 * The folder each loaded external tensor's location is relative to, recorded by loadModel.
 * Readers deep in the pipeline (shape inference, constant folding in gradient rules) get
 * bare TensorProtos without the model around them; this way they read from the model's
 * folder, never from the working directory.
 */
const externalBaseDirs = new WeakMap<TensorProto, string>();

export function setExternalBaseDir(t: TensorProto, baseDir: string): void {
  externalBaseDirs.set(t, baseDir);
}

export function externalBaseDir(t: TensorProto): string | undefined {
  return externalBaseDirs.get(t);
}

/** Byte length of a tensor's payload, without reading external data. */
export function tensorByteLength(t: TensorProto): number {
  if (isExternal(t)) {
    const ref = externalRef(t);
    return ref.length ?? numElements(dimsOf(t)) * elementSize(t.data_type ?? 0);
  }
  if (t.raw_data && t.raw_data.length) return t.raw_data.length;
  return numElements(dimsOf(t)) * elementSize(t.data_type ?? 0);
}

/**
 * The tensor's little-endian bytes. raw_data is returned as is (a zero-copy view of the
 * model buffer); external data is read from `baseDir` on demand; typed fields are packed.
 */
export function tensorBytes(t: TensorProto, baseDir?: string): Uint8Array {
  if (isExternal(t)) {
    const ref = externalRef(t);
    const file = externalDataPath(externalBaseDirs.get(t) ?? baseDir ?? '.', ref.location, t.name ?? '?', t.name ?? '?');
    const want = ref.length ?? numElements(dimsOf(t)) * elementSize(t.data_type ?? 0);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new ModelFormatError(file, `external data of tensor '${t.name}' cannot be opened (${(e as NodeJS.ErrnoException).code})`);
    }
    try {
      const out = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, out, got, want - got, ref.offset + got);
        if (n === 0) throw new ModelFormatError(file, `external data of tensor '${t.name}' is truncated (wanted ${want} bytes at offset ${ref.offset})`);
        got += n;
      }
      return out;
    } finally {
      fs.closeSync(fd);
    }
  }
  if (t.raw_data && t.raw_data.length) return t.raw_data;
  const dt = t.data_type ?? 0;
  const n = numElements(dimsOf(t));
  switch (dt) {
    case DataType.FLOAT: return new Uint8Array(Float32Array.from(t.float_data ?? []).buffer);
    case DataType.DOUBLE: return new Uint8Array(Float64Array.from(t.double_data ?? []).buffer);
    case DataType.INT64: return new Uint8Array(BigInt64Array.from((t.int64_data ?? []).map((v) => BigInt(String(v)))).buffer);
    case DataType.UINT64: return new Uint8Array(BigUint64Array.from((t.uint64_data ?? []).map((v) => BigInt(String(v)))).buffer);
    case DataType.INT32: return new Uint8Array(Int32Array.from(t.int32_data ?? []).buffer);
    case DataType.UINT32: return new Uint8Array(Uint32Array.from((t.uint64_data ?? []).map((v) => toNumber(v))).buffer);
    case DataType.INT16: return new Uint8Array(Int16Array.from(t.int32_data ?? []).buffer);
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return new Uint8Array(Uint16Array.from(t.int32_data ?? []).buffer);
    case DataType.INT8: return new Uint8Array(Int8Array.from(t.int32_data ?? []).buffer);
    case DataType.UINT8: case DataType.BOOL: return Uint8Array.from(t.int32_data ?? []);
    default:
      if (n === 0) return new Uint8Array(0);
      throw new ModelFormatError(t.name ?? '?', `tensor '${t.name}' has type ${dataTypeName(dt)} that grl-onnx cannot read`);
  }
}

/** Copy bytes into a fresh, aligned ArrayBuffer (typed-array views need alignment). */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

/** Float32 values of a FLOAT tensor. A copy, so it can be handed to ORT or mutated. */
export function tensorToFloat32(t: TensorProto, baseDir?: string): Float32Array {
  if ((t.data_type ?? 0) !== DataType.FLOAT) throw new Error(`tensor '${t.name}' is ${dataTypeName(t.data_type ?? 0)}, not FLOAT`);
  return new Float32Array(aligned(tensorBytes(t, baseDir)));
}

/** Integer values of an INT64/INT32 tensor as numbers (for axes, shapes, indices). */
export function tensorToInts(t: TensorProto, baseDir?: string): number[] {
  const dt = t.data_type ?? 0;
  const bytes = aligned(tensorBytes(t, baseDir));
  if (dt === DataType.INT64) return Array.from(new BigInt64Array(bytes), (v) => Number(v));
  if (dt === DataType.INT32) return Array.from(new Int32Array(bytes));
  throw new Error(`tensor '${t.name}' is ${dataTypeName(dt)}, not an integer tensor`);
}

/** Any numeric tensor as float64 numbers (for reports and constant folding of small tensors). */
export function tensorToNumbers(t: TensorProto, baseDir?: string): number[] {
  const dt = t.data_type ?? 0;
  const bytes = aligned(tensorBytes(t, baseDir));
  switch (dt) {
    case DataType.FLOAT: return Array.from(new Float32Array(bytes));
    case DataType.DOUBLE: return Array.from(new Float64Array(bytes));
    case DataType.INT64: return Array.from(new BigInt64Array(bytes), Number);
    case DataType.INT32: return Array.from(new Int32Array(bytes));
    case DataType.UINT8: case DataType.BOOL: return Array.from(new Uint8Array(bytes));
    case DataType.INT8: return Array.from(new Int8Array(bytes));
    default: throw new Error(`tensor '${t.name}' is ${dataTypeName(dt)}; cannot read it as numbers`);
  }
}

export function makeTensor(name: string, dataType: DataType, dims: readonly number[], raw: ArrayBufferView): TensorProto {
  return { name, data_type: dataType, dims: [...dims], raw_data: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

export function float32Tensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, DataType.FLOAT, dims, Float32Array.from(values));
}

export function int64Tensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, DataType.INT64, dims, BigInt64Array.from(Array.from(values), (v) => BigInt(v)));
}

export type { Int64 };
