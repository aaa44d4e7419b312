// Model I/O, layer 1: file primitives shared by saving and by everything else that
// writes (checkpoints, reports, prepared corpora). Outputs are written under a temp
// name in their destination folder, fsynced, then renamed, so a crash never leaves a
// half-written file where a good one was.
import * as fs from 'fs';
import * as path from 'path';
import { GrlError } from './errors';

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

export function writeAllToFd(fd: number, chunks: Uint8Array[]): void {
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
export function writeFileAtomic(dest: string, data: Uint8Array | string | Uint8Array[]): void {
  const f = new AtomicFile(dest);
  try {
    f.write(typeof data === 'string' ? [Buffer.from(data)] : Array.isArray(data) ? data : [data]);
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}
