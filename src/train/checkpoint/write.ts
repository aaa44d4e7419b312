// Checkpoints, writing: ORT's flatbuffer laid out front to back so the tensor payloads
// never pass through a builder. Every table, vector and string (a few KB even at
// BERT-base size) is laid out in memory first, parents before children, so each
// offset points forward as flatbuffers requires; the raw_data vectors come last, each
// payload 16-byte aligned, and are written to the file straight from the caller's
// arrays (a session's live buffers). A 1.3 GB checkpoint (BERT-base with AdamW) used
// to need a 1.3 GB builder beside the buffers it copied; now it needs nothing extra.
//
// Layout rules kept (flatbuffers' verifier checks them): a table starts with its
// soffset to a vtable written just before it; scalars sit at multiples of their size;
// uoffsets, vector lengths and strings at multiples of 4; int64 vector elements at 8.
import { DataType } from '../../onnx/proto';
import { GrlError } from '../../onnx/errors';
import { writeFileAtomic } from '../../onnx/io';
import { CHECKPOINT_IDENTIFIER, CheckpointState, NamedTensor, OptimizerGroup, PropertyBag } from './format';

/** A table field by slot: a scalar, an object written after the table, or a tensor payload. */
type Field =
  | { i8: number } | { i32: number } | { f32: number } | { i64: bigint }
  | { ref: () => number }
  | { payload: Float32Array }
  | undefined;

const sizeOf = (f: Exclude<Field, undefined>): number => ('i64' in f ? 8 : 'i8' in f ? 1 : 4);

/** The metadata of a checkpoint, and where each payload's vector goes after it. */
export interface CheckpointLayout {
  meta: Uint8Array;
  /** Per payload, in file order: the position of its length prefix, and the values. */
  payloads: { at: number; data: Float32Array }[];
  size: number;
}

class ForwardWriter {
  private buf = new Uint8Array(1 << 14);
  private dv = new DataView(this.buf.buffer);
  private len = 0;
  private readonly payloadRefs: { at: number; data: Float32Array }[] = [];

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      grown.set(this.buf);
      this.buf = grown;
      this.dv = new DataView(grown.buffer);
    }
    this.len += n;
    return at;
  }

  /** Zero padding until the next write lands at `at % n === rem`. */
  align(n: number, rem = 0): void {
    while (this.len % n !== rem) this.reserve(1);
  }

  // Each write reserves first: reserving may replace the buffer and its DataView.
  private u16(v: number): void {
    const at = this.reserve(2);
    this.dv.setUint16(at, v, true);
  }

  private i64(v: bigint): void {
    const at = this.reserve(8);
    this.dv.setBigInt64(at, v, true);
  }

  u32(v: number): number {
    const at = this.reserve(4);
    this.dv.setUint32(at, v, true);
    return at;
  }

  /** Point the uoffset at `at` to `target` (always forward). */
  patch(at: number, target: number): void {
    this.dv.setUint32(at, target - at, true);
  }

  string(s: string): number {
    const bytes = Buffer.from(s, 'utf8');
    this.align(4);
    const at = this.u32(bytes.length);
    const data = this.reserve(bytes.length + 1);
    this.buf.set(bytes, data);
    return at;
  }

  int64s(xs: number[]): number {
    this.align(8, 4);
    const at = this.u32(xs.length);
    for (const x of xs) this.i64(BigInt(x));
    return at;
  }

  /** A vector of tables: the slots first, then each table, patched as it is written. */
  tables(items: (() => number)[]): number {
    this.align(4);
    const at = this.u32(items.length);
    const slots = items.map(() => this.u32(0));
    items.forEach((emit, i) => this.patch(slots[i], emit()));
    return at;
  }

  table(fields: Field[]): number {
    const present = fields.map((f, slot) => ({ f, slot })).filter((x): x is { f: Exclude<Field, undefined>; slot: number } => x.f !== undefined);
    // Inline layout: the soffset, then fields by decreasing size so each sits at a multiple of its size.
    const ordered = [...present].sort((a, b) => sizeOf(b.f) - sizeOf(a.f));
    const offsets = new Map<number, number>();
    let end = 4;
    for (const { f, slot } of ordered) {
      const s = sizeOf(f);
      end = Math.ceil(end / s) * s;
      offsets.set(slot, end);
      end += s;
    }
    this.align(2);
    const vtable = this.len;
    this.u16(4 + 2 * fields.length);
    this.u16(end);
    for (let slot = 0; slot < fields.length; slot++) this.u16(offsets.get(slot) ?? 0);
    this.align(ordered.some((x) => sizeOf(x.f) === 8) ? 8 : 4);
    const table = this.reserve(end);
    this.dv.setInt32(table, table - vtable, true);
    const refs: { at: number; emit: () => number }[] = [];
    for (const { f, slot } of present) {
      const at = table + (offsets.get(slot) as number);
      if ('i8' in f) this.dv.setInt8(at, f.i8);
      else if ('i32' in f) this.dv.setInt32(at, f.i32, true);
      else if ('f32' in f) this.dv.setFloat32(at, f.f32, true);
      else if ('i64' in f) this.dv.setBigInt64(at, f.i64, true);
      else if ('ref' in f) refs.push({ at, emit: f.ref });
      else this.payloadRefs.push({ at, data: f.payload });
    }
    for (const r of refs) this.patch(r.at, r.emit());
    return table;
  }

  /** Place the payload vectors after the metadata, 16-byte aligned, and patch their fields. */
  finish(): CheckpointLayout {
    let cursor = this.len;
    const payloads = this.payloadRefs.map(({ at, data }) => {
      const length = cursor + ((12 - (cursor % 16)) + 16) % 16;
      this.patch(at, length);
      cursor = length + 4 + data.byteLength;
      return { at: length, data };
    });
    const size = Math.ceil(cursor / 16) * 16;
    return { meta: this.buf.slice(0, this.len), payloads, size };
  }
}

function tensor(w: ForwardWriter, t: NamedTensor): () => number {
  return () => w.table([{ ref: () => w.string(t.name) }, undefined, { ref: () => w.int64s(t.dims) }, { i32: DataType.FLOAT }, { payload: t.data }]);
}

/** An int property as int64 (truncated); NaN, ±Infinity or past int64 is an error, not a RangeError or a wrapped value. */
function int64Property(name: string, v: number): bigint {
  if (!(Math.abs(v) < 2 ** 63)) throw new GrlError(`checkpoint int property '${name}' is ${v}; int properties hold int64 values`);
  return BigInt(Math.trunc(v));
}

function propertyBag(w: ForwardWriter, p: PropertyBag): number {
  const entries = <T>(rec: Record<string, T>, value: (v: T, k: string) => Field) => Object.entries(rec).map(([k, v]) => () => w.table([{ ref: () => w.string(k) }, value(v, k)]));
  return w.table([
    { ref: () => w.tables(entries(p.ints, (v, k) => ({ i64: int64Property(k, v) }))) },
    { ref: () => w.tables(entries(p.floats, (v) => ({ f32: v }))) },
    { ref: () => w.tables(entries(p.strings, (v) => ({ ref: () => w.string(v) }))) },
  ]);
}

function optimizerGroup(w: ForwardWriter, g: OptimizerGroup): number {
  const states = g.states.map((s) => () => w.table([{ ref: () => w.string(s.paramName) }, { ref: () => w.tables(s.momentums.map((m) => tensor(w, m))) }]));
  return w.table([{ ref: () => w.string(g.name) }, { i64: BigInt(g.step) }, { f32: g.initialLearningRate }, { ref: () => w.tables(states) }]);
}

/** The checkpoint's metadata and payload positions (nothing of the payloads is copied). */
export function layoutCheckpoint(s: CheckpointState): CheckpointLayout {
  const w = new ForwardWriter();
  // The root uoffset, then the 4-byte file identifier (set in the bytes once laid out).
  const root = w.u32(0);
  const idAt = w.u32(0);
  const module = () => w.table([
    { ref: () => w.tables(s.trainable.map((t) => tensor(w, t))) },
    { ref: () => w.tables(s.frozen.map((t) => tensor(w, t))) },
    { i8: 0 },
    { i8: 0 },
  ]);
  const top = w.table([
    { i32: s.version },
    { ref: module },
    { ref: () => w.tables(s.optimizerGroups.map((g) => () => optimizerGroup(w, g))) },
    { ref: () => propertyBag(w, s.properties) },
  ]);
  w.patch(root, top);
  const layout = w.finish();
  layout.meta.set(Buffer.from(CHECKPOINT_IDENTIFIER, 'latin1'), idAt);
  if (layout.size >= 2 ** 31) throw new GrlError(`checkpoint too large for the ORT flatbuffer format (${layout.size} bytes; the limit is 2 GiB)`);
  return layout;
}

/** The file's pieces in order: metadata, then per payload its padding, length and values (views). */
function chunks(layout: CheckpointLayout): Uint8Array[] {
  const out: Uint8Array[] = [layout.meta];
  let pos = layout.meta.length;
  for (const { at, data } of layout.payloads) {
    const head = new Uint8Array(at - pos + 4);
    new DataView(head.buffer).setUint32(at - pos, data.length * 4, true);
    out.push(head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    pos = at + 4 + data.byteLength;
  }
  if (layout.size > pos) out.push(new Uint8Array(layout.size - pos));
  return out;
}

/** Encode a checkpoint into one buffer (for callers that want bytes; saveCheckpoint streams). */
export function serializeCheckpoint(s: CheckpointState): Uint8Array {
  const layout = layoutCheckpoint(s);
  const out = new Uint8Array(layout.size);
  let pos = 0;
  for (const c of chunks(layout)) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** Write a checkpoint file atomically (temp file, fsync, rename), the payloads straight from their arrays. */
export function saveCheckpoint(s: CheckpointState, dest: string): void {
  writeFileAtomic(dest, chunks(layoutCheckpoint(s)));
}
