// Run folders: where `train`, `experiment` and `artifacts` write. A folder that
// already holds a run is refused unless the user says --resume (continue it) or
// --overwrite (replace it, like Hugging Face's overwrite_output_dir); the old run
// is only removed once the new one has validated its inputs. While a process
// writes a folder it holds a lock file there (pid, host, start time), created
// atomically with O_EXCL: a second process refuses naming the holder, and a lock
// whose process is gone is taken over with a note.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GrlError } from '../onnx/errors';
import { Model, externalFiles, sameFile } from '../onnx/io';

export const LOCK_FILE = '.grl-onnx.lock';

export interface LockInfo { pid: number; host: string; started: string; command: string }

export interface RunFolderSpec {
  /** Files or folders whose presence means the folder holds a run worth keeping. */
  markers: string[];
  /** What --overwrite removes (default: the markers). */
  files?: string[];
  /** Continue the run in the folder (it must hold one). */
  resume?: boolean;
  /** Replace the run in the folder. */
  overwrite?: boolean;
  /** Whether the command can continue a run (the refusal then mentions --resume). */
  canResume?: boolean;
  /** Written into the lock for whoever finds it. */
  command?: string;
  /** The input model's path and the run's files it must not be (checked first: the more specific refusal). */
  input?: { model: string; written: string[] };
}

/** Whether `pid` is a live process on this machine (EPERM: alive, someone else's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunFolder {
  /** Notes for the user (a stale lock taken over); library code never prints. */
  readonly notes: string[] = [];
  private locked = false;
  private created = false;

  constructor(readonly dir: string, private readonly spec: RunFolderSpec) {
    if (spec.resume && spec.overwrite) throw new GrlError(`${dir}: give --resume (continue the run) or --overwrite (replace it), not both`, { file: dir });
    if (spec.input) this.refuseInputs(spec.input.model, undefined, spec.input.written);
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new GrlError(`${dir}: is a file, not a folder; give a folder for the run's files`, { file: dir });
    this.refuseExistingRun();
  }

  private at(f: string): string {
    return path.join(this.dir, f);
  }

  /** The first marker present, if the folder holds a run. */
  existingRun(): string | undefined {
    return this.spec.markers.find((m) => fs.existsSync(this.at(m)));
  }

  private refuseExistingRun(): void {
    if (this.spec.resume || this.spec.overwrite) return;
    const marker = this.existingRun();
    if (!marker) return;
    const how = this.spec.canResume ? `use --resume ${this.dir} to continue it or --overwrite to replace it` : 'use --overwrite to replace it, or give another folder';
    throw new GrlError(`${this.dir}: already holds a run (${marker}); ${how}`, { file: this.dir });
  }

  /**
   * Refuse a run that would overwrite its own input: the model at `modelPath`, or an
   * external data file of `model`, being one of the files the run writes.
   */
  refuseInputs(modelPath: string | undefined, model: Model | undefined, written: string[]): void {
    const files = written.map((f) => this.at(f));
    if (modelPath && files.some((f) => sameFile(modelPath, f))) {
      throw new GrlError(`${modelPath}: the run would overwrite its input model; give another --out`, { file: modelPath });
    }
    for (const f of model ? externalFiles(model) : []) {
      if (files.some((w) => sameFile(f, w))) throw new GrlError(`${model?.source}: the run would overwrite its input's external data ${f}; give another --out`, { file: model?.source });
    }
  }

  /**
   * Called once the inputs are validated, before the first write: creates the folder,
   * takes the lock, checks again (another process may have finished a run here
   * meanwhile) and, with --overwrite, removes the old run.
   */
  claim(): void {
    if (this.locked) return;
    if (!fs.existsSync(this.dir)) {
      fs.mkdirSync(this.dir, { recursive: true });
      this.created = true;
    }
    this.lock();
    try {
      this.refuseExistingRun();
      if (this.spec.overwrite) for (const f of this.spec.files ?? this.spec.markers) fs.rmSync(this.at(f), { recursive: true, force: true });
    } catch (e) {
      this.release();
      throw e;
    }
  }

  private lock(): void {
    const file = this.at(LOCK_FILE);
    const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: this.spec.command ?? 'grl-onnx' };
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(file, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new GrlError(`${this.dir}: cannot create the lock file (${(e as NodeJS.ErrnoException).code})`, { file: this.dir });
        this.takeOverIfStale(file);
        continue;
      }
      try {
        fs.writeSync(fd, `${JSON.stringify(mine)}\n`);
      } finally {
        fs.closeSync(fd);
      }
      this.locked = true;
      return;
    }
    throw new GrlError(`${this.dir}: could not take the lock ${LOCK_FILE} (other processes keep taking it)`, { file: this.dir });
  }

  /** Throws naming the holder when the lock is live; removes it (with a note) when its process is gone. */
  private takeOverIfStale(file: string): void {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return; // released meanwhile: try again
    }
    let holder: Partial<LockInfo> = {};
    try {
      holder = JSON.parse(text);
    } catch {
      // Torn: its writer died between creating and writing it (or is writing right now).
      const age = Date.now() - fs.statSync(file).mtimeMs;
      if (age < 5000) throw new GrlError(`${this.dir}: in use by another grl-onnx process (lock ${LOCK_FILE} is being written); wait for it or give another folder`, { file: this.dir });
    }
    const sameHost = !holder.host || holder.host === os.hostname();
    if (typeof holder.pid === 'number' && (!sameHost || alive(holder.pid))) {
      throw new GrlError(`${this.dir}: in use by ${holder.command ?? 'grl-onnx'} (pid ${holder.pid}${sameHost ? '' : ` on ${holder.host}`}, started ${holder.started}); wait for it to finish or give another folder`, { file: this.dir });
    }
    // Only remove the lock we judged: another process may have replaced it meanwhile.
    if (fs.readFileSync(file, 'utf8') !== text) return;
    fs.rmSync(file, { force: true });
    this.notes.push(`${this.dir}: took over a stale lock of pid ${holder.pid ?? '?'} (started ${holder.started ?? '?'}), which no longer runs`);
  }

  /**
   * Remove `files` after a failed run that left nothing worth keeping (no marker): only
   * while holding the lock, so they are this run's own. Then release() can remove a
   * folder this process created.
   */
  discardUnfinished(files: string[]): void {
    if (!this.locked || this.existingRun()) return;
    for (const f of files) fs.rmSync(this.at(f), { recursive: true, force: true });
  }

  /** Drop the lock; a folder this process created and left empty is removed. */
  release(): void {
    if (this.locked) {
      fs.rmSync(this.at(LOCK_FILE), { force: true });
      this.locked = false;
    }
    if (this.created) {
      try {
        fs.rmdirSync(this.dir);
      } catch {
        // Not empty: the run wrote something, which stays.
      }
      this.created = false;
    }
  }
}

/** Read a folder's lock, if any (for messages and tests). */
export function readLock(dir: string): LockInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}
