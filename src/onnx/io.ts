// Model I/O, layer 2: loading and saving whole models.
//
// Loading decodes with protobufjs reflection; tensor bytes stay zero-copy views of
// the file buffer and external data is only read when asked for. Before decoding,
// a wire-format scan checks the bytes are well-formed protobuf and records any
// field the schema does not know, so that a save can refuse instead of dropping it.
//
// Saving streams the model as a list of chunks: small re-encoded headers plus the
// original tensor payloads, so a 400 MB model is never copied into a second buffer.
// Files are written to a temp file in the destination folder, then renamed.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { GraphProto, ModelProto, TensorProto, messageType, toNumber, DATA_LOCATION_EXTERNAL } from './proto';
import { GrlError, ModelFormatError } from './errors';
import { externalBaseDir, externalRef, isExternal, setExternalBaseDir, tensorByteLength, tensorBytes } from './tensor';
import { checkExternalTensor, refuseNestedExternalData } from './external-data';
import { checkDataFileName } from './external-path';

export interface Model {
  proto: ModelProto;
  /** Where it came from: a path, '<stdin>' or '<buffer>'. Used in error messages. */
  source: string;
  /** Folder that external-data locations are relative to (the model file's folder). */
  baseDir?: string;
  /** Paths of wire fields that proto/onnx.proto does not define (e.g. `graph.node[3].#99`). */
  unknownFields: string[];
}

export interface LoadOptions {
  /** Folder for external data when loading from a buffer or stdin. */
  baseDir?: string;
  /** Name used in error messages when loading from a buffer. */
  name?: string;
}

/** Load a model from a path, `-` (stdin) or a buffer. */
export function loadModel(src: string | Uint8Array, opts: LoadOptions = {}): Model {
  let buf: Buffer;
  let source: string;
  let baseDir = opts.baseDir;
  if (typeof src === 'string') {
    if (src === '-') {
      source = '<stdin>';
      buf = readStdin();
      baseDir ??= process.cwd();
    } else {
      source = src;
      try {
        buf = fs.readFileSync(src);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ModelFormatError(src, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a model file' : `cannot read (${code})`);
      }
      baseDir ??= path.dirname(path.resolve(src));
    }
  } else {
    source = opts.name ?? '<buffer>';
    buf = Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  }
  return decodeModel(buf, source, baseDir);
}

function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF') break;
      throw new ModelFormatError('<stdin>', `cannot read (${code})`);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function decodeModel(buf: Buffer, source: string, baseDir?: string): Model {
  if (buf.length === 0) throw new ModelFormatError(source, 'empty file, not an ONNX model');
  const first = buf.subarray(0, 64).toString('latin1').trimStart()[0];
  if (first === '{' || first === '[') throw new ModelFormatError(source, 'looks like JSON, not an ONNX model (a binary protobuf file)');
  const unknownFields: string[] = [];
  try {
    scanWire(messageType('ModelProto'), buf, 0, buf.length, 'model', unknownFields, 0);
  } catch (e) {
    throw new ModelFormatError(source, `not a valid ONNX model: ${(e as Error).message}`, e);
  }
  let proto: ModelProto;
  try {
    proto = messageType('ModelProto').decode(buf) as unknown as ModelProto;
  } catch (e) {
    throw new ModelFormatError(source, `not a valid ONNX model: ${(e as Error).message}`, e);
  }
  if (!proto.graph) throw new ModelFormatError(source, 'not an ONNX model: it has no graph');
  if (toNumber(proto.ir_version) <= 0) throw new ModelFormatError(source, 'not an ONNX model: it has no ir_version');
  if (!proto.opset_import?.length) throw new ModelFormatError(source, 'not an ONNX model: it imports no opset');
  if (unknownFields.some((f) => !f.startsWith('model.graph') && !f.startsWith('model.functions')) && unknownFields.length > 8) {
    throw new ModelFormatError(source, `not an ONNX model: ${unknownFields.length} fields unknown to the ONNX schema (first: ${unknownFields[0]})`);
  }
  const model: Model = { proto, source, baseDir, unknownFields };
  for (const t of proto.graph.initializer ?? []) {
    if (!isExternal(t)) continue;
    checkExternalTensor(t, baseDir ?? '.', source);
    if (baseDir !== undefined) setExternalBaseDir(t, baseDir);
  }
  refuseNestedExternalData(proto, baseDir ?? '.', source);
  return model;
}


const MAX_DEPTH = 64;

/**
 * Walk protobuf wire format against the schema: throws on malformed bytes and collects
 * fields the schema does not define. Payloads (raw_data, packed floats) are skipped by
 * length, so this costs one pass over the field headers, not over the bytes.
 */
function scanWire(type: protobuf.Type, buf: Uint8Array, start: number, end: number, where: string, unknown: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`messages nested deeper than ${MAX_DEPTH} at ${where}`);
  let pos = start;
  const counts = new Map<number, number>();
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new Error(`truncated at byte ${pos} (in ${where})`);
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error(`bad varint at byte ${pos} (in ${where})`);
  };
  while (pos < end) {
    const tag = varint();
    const id = Math.floor(tag / 8);
    const wt = tag % 8;
    if (id === 0) throw new Error(`field number 0 at byte ${pos} (in ${where})`);
    const field = type.fieldsById[id];
    const index = counts.get(id) ?? 0;
    counts.set(id, index + 1);
    const fieldPath = field ? `${where}.${field.name}${field.repeated ? `[${index}]` : ''}` : `${where}.#${id}`;
    if (!field) unknown.push(fieldPath);
    switch (wt) {
      case 0: varint(); break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        const len = varint();
        if (pos + len > end) throw new Error(`truncated: field ${fieldPath} wants ${len} bytes, ${end - pos} left`);
        if (field) {
          field.resolve();
          if (field.resolvedType instanceof protobuf.Type) scanWire(field.resolvedType, buf, pos, pos + len, fieldPath, unknown, depth + 1);
        }
        pos += len;
        break;
      }
      default: throw new Error(`wire type ${wt} at byte ${pos} (in ${where}) is not valid protobuf`);
    }
    if (pos > end) throw new Error(`truncated (in ${where})`);
  }
}

export interface SaveOptions {
  /** Move initializers of at least `threshold` bytes to an external data file. */
  externalData?: boolean | { threshold?: number; location?: string };
  /** Refuse to overwrite this path (the input). */
  protect?: string[];
  /**
   * Initializer bytes above which large tensors go external automatically (default: a safe
   * margin under protobuf's 2 GiB message limit).
   */
  autoExternalAbove?: number;
  /** Where `dest = '-'` writes its chunks (default: file descriptor 1). The CLI injects its stdout here. */
  stdout?: (chunk: Uint8Array) => void;
}

/** Protobuf refuses messages of 2 GiB and more; we externalize before getting close. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;
const DEFAULT_EXTERNAL_THRESHOLD = 1024;
const EXTERNAL_ALIGN = 4096;

/**
 * Save a model to a path, or to stdout with '-'. External tensors stay external (their
 * bytes are copied into `<out>.data` next to the output); `externalData` moves large
 * initializers out, and that happens automatically when the model would pass 2 GB.
 *
 * A data file the model itself reads from is never overwritten: that happens when saving
 * in place (`dest` is the file the model was loaded from) or next to a model whose data
 * has the output's name. The new data then goes to a fresh `<out>.<8 hex>.data`, the
 * model that names it is renamed into place, and only then, when saving in place, are
 * the old data files deleted: those named as saveModel names them (`<out>.data`,
 * `<out>.<8 hex>.data`); other data files may be shared with other models and stay.
 * Replacing another model at `dest` whose data file exists works the same way: fresh
 * data name first, model renamed, then the replaced model's `<out>.data` removed.
 * A crash at any point leaves the old model with its old data (plus, at worst, an
 * orphaned new data file). After an in-place save, reload the model: the in-memory one
 * still points at the deleted data.
 */
export function saveModel(model: Model, dest: string, opts: SaveOptions = {}): void {
  if (model.unknownFields.length) {
    throw new GrlError(`${model.source}: refusing to save: it has fields unknown to grl-onnx's ONNX schema (${model.unknownFields.slice(0, 3).join(', ')}${model.unknownFields.length > 3 ? ', ...' : ''}); saving would drop them`, { file: model.source });
  }
  const graph = model.proto.graph ?? {};
  const inits = graph.initializer ?? [];
  let total = 0;
  for (const t of inits) total += tensorByteLength(t);
  let threshold = Infinity;
  let location: string | undefined;
  if (opts.externalData) {
    threshold = typeof opts.externalData === 'object' ? opts.externalData.threshold ?? DEFAULT_EXTERNAL_THRESHOLD : DEFAULT_EXTERNAL_THRESHOLD;
    location = typeof opts.externalData === 'object' ? opts.externalData.location : undefined;
    if (location !== undefined) checkDataFileName(location);
  } else if (total > (opts.autoExternalAbove ?? PROTOBUF_LIMIT - (64 << 20))) {
    threshold = DEFAULT_EXTERNAL_THRESHOLD;
  }
  const goesOut = (t: TensorProto) => isExternal(t) || tensorByteLength(t) >= threshold;
  const anyExternal = inits.some(goesOut);
  if (anyExternal && dest === '-') throw new GrlError('cannot write a model with external data to stdout; give -o FILE');
  for (const p of opts.protect ?? []) {
    if (dest !== '-' && p !== '-' && sameFile(p, dest)) throw new GrlError(`${dest}: refusing to overwrite the input model (use --in-place to allow it)`, { file: dest });
  }

  let dataFile: AtomicFile | undefined;
  const emitted: TensorProto[] = [];
  // Data files the model reads from, and whether the save replaces the model's own file.
  const sources = externalFiles(model);
  const inPlace = dest !== '-' && sameFile(model.source, dest);
  let freshData = false;
  // The previous model's own data file at dest, deleted once the new model replaced it.
  let replacedData: string | undefined;
  try {
    if (anyExternal) {
      const dir = path.dirname(path.resolve(dest));
      location ??= `${path.basename(dest)}.data`;
      const target = path.join(dir, location);
      // Also when replacing another model at dest: its data must stay until the new model is in place.
      const replacing = !inPlace && fs.existsSync(dest);
      if (sources.some((f) => sameFile(f, target)) || (replacing && fs.existsSync(target))) {
        if (replacing && ownDataFile(target, dest)) replacedData = target;
        location = freshDataName(dir, path.basename(dest));
        freshData = true;
      }
      dataFile = new AtomicFile(path.join(dir, location));
      for (const t of inits) {
        if (!goesOut(t)) { emitted.push(t); continue; }
        const bytes = tensorBytes(t, model.baseDir);
        const offset = dataFile.alignTo(EXTERNAL_ALIGN);
        dataFile.write([bytes]);
        const { raw_data: _raw, float_data: _f, double_data: _d, int32_data: _i, int64_data: _l, uint64_data: _u, external_data: _e, ...rest } = t;
        emitted.push({
          ...rest,
          data_location: DATA_LOCATION_EXTERNAL,
          external_data: [
            { key: 'location', value: location },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ],
        });
      }
    } else {
      emitted.push(...inits);
    }
    const chunks = encodeModelChunks(model.proto, emitted);
    if (dest === '-') {
      if (opts.stdout) for (const c of chunks) opts.stdout(c);
      else writeAllToFd(1, chunks);
    } else {
      const out = new AtomicFile(dest);
      const committed = dataFile;
      try {
        out.write(chunks);
        dataFile?.commit();
        dataFile = undefined;
        out.commit();
      } catch (e) {
        out.abort();
        // A fresh data file is named by no model unless the model rename happened.
        if (freshData && committed) fs.rmSync(committed.dest, { force: true });
        throw e;
      }
      if (inPlace) {
        const kept = committed ? path.resolve(committed.dest) : undefined;
        for (const f of sources) if (ownDataFile(f, dest) && (!kept || !sameFile(f, kept))) fs.rmSync(f, { force: true });
      }
      if (replacedData && !sources.some((f) => sameFile(f, replacedData as string))) fs.rmSync(replacedData, { force: true });
    }
  } finally {
    dataFile?.abort();
  }
}

/** Absolute paths of the external data files a model's initializers read. */
export function externalFiles(model: Model): string[] {
  const files = new Set<string>();
  for (const t of model.proto.graph?.initializer ?? []) {
    if (isExternal(t)) files.add(path.resolve(externalBaseDir(t) ?? model.baseDir ?? '.', externalRef(t).location));
  }
  return [...files];
}

/**
 * Whether `file` is a data file saveModel names for `dest` (`<model>.data` or a fresh
 * `<model>.<8 hex>.data` beside it): only those are deleted after an in-place save. Any
 * other name (`weights.bin`, optimum's `model.onnx_data`, a file in another folder) may
 * be shared with other models, so it is left in place.
 */
function ownDataFile(file: string, dest: string): boolean {
  const base = path.basename(dest);
  const name = path.basename(file);
  if (path.dirname(path.resolve(file)) !== path.dirname(path.resolve(dest))) return false;
  return name === `${base}.data` || (name.startsWith(`${base}.`) && /^\.[0-9a-f]{8}\.data$/.test(name.slice(base.length)));
}

/** `<model>.<8 hex>.data`, a name no file in `dir` has. */
function freshDataName(dir: string, base: string): string {
  for (;;) {
    const name = `${base}.${crypto.randomBytes(4).toString('hex')}.data`;
    if (!fs.existsSync(path.join(dir, name))) return name;
  }
}

/** Same path, or another name (symlink, hard link) for the same file. */
export function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Encode a model to one buffer (small models, tests, handing bytes to ORT). */
export function serializeModel(model: Model | ModelProto): Buffer {
  const proto = 'proto' in model ? (model as Model).proto : (model as ModelProto);
  return Buffer.concat(encodeModelChunks(proto, proto.graph?.initializer ?? []));
}

const BIG_PAYLOAD = 4096;

function tagBytes(field: number, len: number): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((field << 3) | 2).uint32(len);
  return Buffer.from(w.finish());
}

/**
 * ModelProto as chunks. Big raw_data payloads are emitted as the original views; only
 * headers are re-encoded. Protobuf allows fields in any order, so graph.initializer and
 * model.graph go last.
 */
function encodeModelChunks(model: ModelProto, initializers: TensorProto[]): Buffer[] {
  const T = messageType('TensorProto');
  const G = messageType('GraphProto');
  const M = messageType('ModelProto');
  const graph: GraphProto = model.graph ?? {};
  const small: TensorProto[] = [];
  const bigChunks: Buffer[] = [];
  let bigLen = 0;
  for (const t of initializers) {
    const raw = t.raw_data;
    if (!raw || raw.length < BIG_PAYLOAD) { small.push(t); continue; }
    const { raw_data: _r, ...rest } = t;
    const head = Buffer.from(T.encode(rest).finish());
    const rawTag = tagBytes(9, raw.length);
    const payload = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const tensorLen = head.length + rawTag.length + payload.length;
    const outer = tagBytes(5, tensorLen);
    bigChunks.push(outer, head, rawTag, payload);
    bigLen += outer.length + tensorLen;
  }
  const graphHead = Buffer.from(G.encode({ ...graph, initializer: small }).finish());
  const graphLen = graphHead.length + bigLen;
  const { graph: _g, ...modelRest } = model;
  const modelHead = Buffer.from(M.encode(modelRest).finish());
  return [modelHead, tagBytes(7, graphLen), graphHead, ...bigChunks];
}

function writeAllToFd(fd: number, chunks: Uint8Array[]): void {
  for (const c of chunks) {
    let off = 0;
    while (off < c.length) {
      try {
        off += fs.writeSync(fd, c, off, c.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
    }
  }
}

/** A file written under a temp name in its destination folder and renamed into place on commit. */
export class AtomicFile {
  readonly tmp: string;
  private fd: number | undefined;
  private pos = 0;
  constructor(readonly dest: string) {
    const dir = path.dirname(path.resolve(dest));
    this.tmp = path.join(dir, `.${path.basename(dest)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
    try {
      this.fd = fs.openSync(this.tmp, 'w');
    } catch (e) {
      throw new GrlError(`${dest}: cannot write (${(e as NodeJS.ErrnoException).code})`, { file: dest });
    }
  }
  /** Pad with zeros to a multiple of `n`; returns the new position. */
  alignTo(n: number): number {
    const pad = (n - (this.pos % n)) % n;
    if (pad) this.write([Buffer.alloc(pad)]);
    return this.pos;
  }
  write(chunks: Uint8Array[]): void {
    if (this.fd === undefined) throw new Error('AtomicFile already closed');
    writeAllToFd(this.fd, chunks);
    for (const c of chunks) this.pos += c.length;
  }
  commit(): void {
    if (this.fd === undefined) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
    fs.renameSync(this.tmp, this.dest);
  }
  abort(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Write a whole buffer atomically (temp file, fsync, rename). */
export function writeFileAtomic(dest: string, data: Uint8Array | string): void {
  const f = new AtomicFile(dest);
  try {
    f.write([typeof data === 'string' ? Buffer.from(data) : data]);
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}
