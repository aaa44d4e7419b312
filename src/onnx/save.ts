// Model I/O, layer 2: saving whole models.
//
// The model is streamed as chunks (encode.ts), large initializers optionally moved
// to an external data file, and every file is written to a temp name in the
// destination folder, then renamed (files.ts). The order of those renames is what
// keeps an in-place save crash-safe: see saveModel.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { TensorProto, DATA_LOCATION_EXTERNAL } from './proto';
import { GrlError } from './errors';
import { externalBaseDir, externalRef, isExternal, tensorByteLength, tensorBytes } from './tensor';
import { checkDataFileName } from './external-path';
import { AtomicFile, sameFile, writeAllToFd } from './files';
import { encodeModelChunks } from './encode';
import type { Model } from './load';

export interface SaveOptions {
  /** Move initializers of at least `threshold` bytes to an external data file. */
  externalData?: boolean | { threshold?: number; location?: string };
  /** Refuse to overwrite this path (the input). */
  protect?: string[];
  /** What the refusal suggests (a command with an --in-place flag says so); default: another file. */
  protectHint?: string;
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

/** Which initializers a save writes to external data, and under which name (if the caller chose one). */
interface ExternalPlan {
  goesOut: (t: TensorProto) => boolean;
  anyExternal: boolean;
  location?: string;
}

/** The data file a save writes: its name relative to the output's folder, and what it replaces. */
interface DataTarget {
  file: AtomicFile;
  location: string;
  /** A fresh `<out>.<8 hex>.data` name, because the usual one is still read by a model. */
  fresh: boolean;
  /** The replaced model's own data file, deleted once the new model is in place. */
  replaced?: string;
}

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
  const inits = model.proto.graph?.initializer ?? [];
  const plan = planExternalData(inits, opts);
  if (plan.anyExternal && dest === '-') throw new GrlError('cannot write a model with external data to stdout; give -o FILE');
  for (const p of opts.protect ?? []) {
    if (dest !== '-' && p !== '-' && sameFile(p, dest)) throw new GrlError(`${dest}: refusing to overwrite the input model (${opts.protectHint ?? 'write the result to another file with -o'})`, { file: dest });
  }
  if (dest === '-') {
    const chunks = encodeModelChunks(model.proto, inits);
    if (opts.stdout) for (const c of chunks) opts.stdout(c);
    else writeAllToFd(1, chunks);
    return;
  }

  // Data files the model reads from, and whether the save replaces the model's own file.
  const sources = externalFiles(model);
  const inPlace = sameFile(model.source, dest);
  let data: DataTarget | undefined;
  let uncommitted: AtomicFile | undefined;
  try {
    let emitted = inits;
    if (plan.anyExternal) {
      data = openDataFile(dest, plan.location, sources, inPlace);
      uncommitted = data.file;
      emitted = writeExternalTensors(model, inits, plan.goesOut, data);
    }
    const out = new AtomicFile(dest);
    try {
      out.write(encodeModelChunks(model.proto, emitted));
      uncommitted?.commit();
      uncommitted = undefined;
      out.commit();
    } catch (e) {
      out.abort();
      // A fresh data file is named by no model unless the model rename happened.
      if (data?.fresh) fs.rmSync(data.file.dest, { force: true });
      throw e;
    }
    removeReplacedData(dest, sources, inPlace, data);
  } finally {
    uncommitted?.abort();
  }
}

/** Which initializers go external: those already external, and those at or above the threshold. */
function planExternalData(inits: TensorProto[], opts: SaveOptions): ExternalPlan {
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
  return { goesOut, anyExternal: inits.some(goesOut), location };
}

/**
 * The data file for `dest`: `location` (default `<out>.data`), or a fresh name when a
 * file the model reads, or the data of a model being replaced at `dest`, has that name.
 */
function openDataFile(dest: string, location: string | undefined, sources: string[], inPlace: boolean): DataTarget {
  const dir = path.dirname(path.resolve(dest));
  let name = location ?? `${path.basename(dest)}.data`;
  const target = path.join(dir, name);
  // Also when replacing another model at dest: its data must stay until the new model is in place.
  const replacing = !inPlace && fs.existsSync(dest);
  let fresh = false;
  let replaced: string | undefined;
  if (sources.some((f) => sameFile(f, target)) || (replacing && fs.existsSync(target))) {
    if (replacing && ownDataFile(target, dest)) replaced = target;
    name = freshDataName(dir, path.basename(dest));
    fresh = true;
  }
  return { file: new AtomicFile(path.join(dir, name)), location: name, fresh, replaced };
}

/** Append the external tensors' bytes to the data file; returns the initializers as the saved model lists them. */
function writeExternalTensors(model: Model, inits: TensorProto[], goesOut: (t: TensorProto) => boolean, data: DataTarget): TensorProto[] {
  const emitted: TensorProto[] = [];
  for (const t of inits) {
    if (!goesOut(t)) { emitted.push(t); continue; }
    const bytes = tensorBytes(t, model.baseDir);
    const offset = data.file.alignTo(EXTERNAL_ALIGN);
    data.file.write([bytes]);
    const { raw_data: _raw, float_data: _f, double_data: _d, int32_data: _i, int64_data: _l, uint64_data: _u, external_data: _e, ...rest } = t;
    emitted.push({
      ...rest,
      data_location: DATA_LOCATION_EXTERNAL,
      external_data: [
        { key: 'location', value: data.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
  }
  return emitted;
}

/** After the new model is in place: delete the data files only the old model named. */
function removeReplacedData(dest: string, sources: string[], inPlace: boolean, data: DataTarget | undefined): void {
  if (inPlace) {
    const kept = data ? path.resolve(data.file.dest) : undefined;
    for (const f of sources) if (ownDataFile(f, dest) && (!kept || !sameFile(f, kept))) fs.rmSync(f, { force: true });
  }
  const replaced = data?.replaced;
  if (replaced && !sources.some((f) => sameFile(f, replaced))) fs.rmSync(replaced, { force: true });
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
