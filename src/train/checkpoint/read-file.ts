// Checkpoints, reading a file without loading it: the flatbuffer structure is parsed through
// positioned reads of small cached pages (PagedFile), and each tensor's values stay in the
// file until TrainingSession copies them straight into their place in its buffers
// (TensorPayload.readInto: fs.readSync into the destination view). A BERT-base resume then
// holds no file-sized buffer beside the session's own (~1.3 GB with AdamW's moments).
// Files grl-onnx writes keep all metadata before the payloads (write.ts); ONNX Runtime's
// interleave them, which the page reads handle the same way.
import * as fs from 'fs';
import { GrlError } from '../../onnx/errors';
import { CHECKPOINT_IDENTIFIER, CheckpointState, TensorPayload } from './format';
import { FlatBytes, checkIdentifier, checkPayload, parseCheckpoint } from './read';

/**
 * Small pages: besides the tables, the parser reads each raw_data vector's length, which sits
 * just before its payload (a page per tensor even in files grl-onnx writes).
 */
const PAGE = 4096;
/** Pages kept (4 MiB): an interleaved file's tables sit next to their payloads, far apart. */
const MAX_PAGES = 1024;
const SIZEOF_INT = 4;

/**
 * The ByteBuffer methods the parser uses, over a file. Bytes past the end read as 0, as
 * flatbuffers' ByteBuffer reads them past its array, so a truncated file parses the same.
 */
export class PagedFile implements FlatBytes {
  private readonly pages = new Map<number, Buffer>();
  private readonly decoder = new TextDecoder();
  /** Bytes read from the file into pages (tests check the payloads are not among them). */
  bytesRead = 0;

  constructor(private readonly fd: number, readonly size: number) {}

  private page(k: number): Buffer {
    let p = this.pages.get(k);
    if (p) {
      this.pages.delete(k); // most recently used last
    } else {
      p = Buffer.alloc(Math.min(PAGE, this.size - k * PAGE));
      readFully(this.fd, p, k * PAGE);
      this.bytesRead += p.length;
      if (this.pages.size >= MAX_PAGES) this.pages.delete(this.pages.keys().next().value as number);
    }
    this.pages.set(k, p);
    return p;
  }

  readUint8(offset: number): number {
    if (!(offset >= 0 && offset < this.size)) return 0;
    return this.page(Math.floor(offset / PAGE))[offset % PAGE];
  }

  /** `length` bytes from `offset`, cut at the end of the file (as subarray cuts). */
  range(offset: number, length: number): Uint8Array {
    const end = Math.min(offset + length, this.size);
    const out = new Uint8Array(Math.max(0, end - offset));
    for (let i = 0; i < out.length; i++) out[i] = this.readUint8(offset + i);
    return out;
  }

  capacity(): number {
    return this.size;
  }
  position(): number {
    return 0;
  }
  readInt8(offset: number): number {
    return (this.readUint8(offset) << 24) >> 24;
  }
  readInt16(offset: number): number {
    return ((this.readUint8(offset) | (this.readUint8(offset + 1) << 8)) << 16) >> 16;
  }
  readInt32(offset: number): number {
    return this.readUint8(offset) | (this.readUint8(offset + 1) << 8) | (this.readUint8(offset + 2) << 16) | (this.readUint8(offset + 3) << 24);
  }
  readInt64(offset: number): bigint {
    return BigInt.asIntN(64, BigInt(this.readInt32(offset) >>> 0) + (BigInt(this.readInt32(offset + 4) >>> 0) << 32n));
  }
  readFloat32(offset: number): number {
    return new Float32Array(Int32Array.of(this.readInt32(offset)).buffer)[0];
  }
  __offset(bbPos: number, vtableOffset: number): number {
    const vtable = bbPos - this.readInt32(bbPos);
    return vtableOffset < this.readInt16(vtable) ? this.readInt16(vtable + vtableOffset) : 0;
  }
  __string(offset: number): string {
    offset += this.readInt32(offset);
    const length = this.readInt32(offset);
    if (length > this.size) throw new Error(`string of ${length} bytes in a ${this.size}-byte file`);
    return this.decoder.decode(this.range(offset + SIZEOF_INT, length));
  }
  __indirect(offset: number): number {
    return offset + this.readInt32(offset);
  }
  __vector(offset: number): number {
    return offset + this.readInt32(offset) + SIZEOF_INT;
  }
  __vector_len(offset: number): number {
    return this.readInt32(offset + this.readInt32(offset));
  }
  __has_identifier(ident: string): boolean {
    for (let i = 0; i < ident.length; i++) if (ident.charCodeAt(i) !== this.readInt8(SIZEOF_INT + i)) return false;
    return true;
  }
}

/** Read dst.length bytes at `position`; throws if the file ends first. */
function readFully(fd: number, dst: Uint8Array, position: number): void {
  let done = 0;
  while (done < dst.length) {
    const n = fs.readSync(fd, dst, done, dst.length - done, position + done);
    if (n === 0) throw new Error(`file ended at byte ${position + done}`);
    done += n;
  }
}

/** An open checkpoint file: its structure, with tensors read on demand until close(). */
export interface CheckpointFile {
  state: CheckpointState<TensorPayload>;
  /** Bytes of metadata read so far (payloads go straight to their destination, uncounted). */
  metadataBytesRead(): number;
  close(): void;
}

/**
 * Open a checkpoint file and parse its structure, leaving the tensor values in the file.
 * Same errors as loadCheckpoint(path). The caller closes it.
 */
export function openCheckpoint(file: string): CheckpointFile {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    size = stat.size;
  } catch (e) {
    fs.closeSync(fd);
    throw cannotRead(file, e);
  }
  try {
    const bytes = new PagedFile(fd, size);
    checkIdentifier(file, size, bytes, () => bytes.range(4, CHECKPOINT_IDENTIFIER.length));
    const state = parseCheckpoint(bytes, file, (name, dims, raw): TensorPayload => {
      // What loadCheckpoint's view of the bytes would hold: the range cut at the end of the file.
      const available = Math.max(0, Math.min(raw.start + raw.length, size) - raw.start);
      const length = checkPayload(file, name, dims, available);
      return { name, dims, length, readInto: (dst) => readPayload(fd, file, name, dst, raw.start) };
    });
    return { state, metadataBytesRead: () => bytes.bytesRead, close: () => fs.closeSync(fd) };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

function readPayload(fd: number, file: string, name: string, dst: Float32Array, position: number): void {
  try {
    readFully(fd, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), position);
  } catch (e) {
    throw new GrlError(`${file}: cannot read tensor '${name}' (${(e as Error).message})`, { file, cause: e });
  }
}

function cannotRead(file: string, e: unknown): GrlError {
  const code = (e as NodeJS.ErrnoException).code;
  return new GrlError(`${file}: cannot read checkpoint (${code === 'ENOENT' ? 'no such file' : code})`, { file });
}
