// Run folders are never clobbered: a finished run is refused without --resume or
// --overwrite (and stays byte for byte), --overwrite replaces it only after the new
// run validated its inputs, a second process on a locked folder refuses naming the
// holder, and a stale lock (dead pid) is taken over with a note.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { runCli } from '../../src/cli/main';
import { LOCK_FILE, RunFolder, readLock } from '../../src/train/run-folder';
import { BIN, ROOT, ensureBuilt } from '../helpers/bin';

const TAGGER = path.join(ROOT, 'models', 'tagger-opset17.onnx');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

let dir: string;
let data: string;
beforeAll(() => ensureBuilt(), 180000);
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-runfolder-'));
  data = path.join(dir, 'd.jsonl');
  const lines = Array.from({ length: 8 }, (_, i) => JSON.stringify({ input_ids: [1 + i, 2 + i, 3], pos: [i % 17, 1, 2], ner: [0, 1, 2] }));
  fs.writeFileSync(data, `${lines.join('\n')}\n`);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const trainArgs = (out: string, steps: number, ...more: string[]) => ['train', TAGGER, '--data', data, '--loss', 'pos', '--lr', '1e-3', '--batch-size', '4', '--steps', String(steps), '--threads', '1', '--json', '--out', out, ...more];

test('a rerun into a finished folder is refused and its model stays unchanged', async () => {
  const run = path.join(dir, 'run');
  expect(await runCli(trainArgs(run, 3), capture().io)).toBe(0);
  const before = fs.readFileSync(path.join(run, 'model.onnx'));
  const metrics = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8');
  const c = capture();
  expect(await runCli(trainArgs(run, 1), c.io)).toBe(1);
  expect(c.err.join('')).toBe(`grl-onnx: ${run}: already holds a run (model.onnx); use --resume ${run} to continue it or --overwrite to replace it\n`);
  expect(fs.readFileSync(path.join(run, 'model.onnx')).equals(before)).toBe(true);
  expect(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')).toBe(metrics);
  expect(fs.existsSync(path.join(run, LOCK_FILE))).toBe(false);
});

test('--overwrite keeps the old run when the new one fails validation, and replaces it once valid', async () => {
  const run = path.join(dir, 'run');
  expect(await runCli(trainArgs(run, 3), capture().io)).toBe(0);
  const before = fs.readFileSync(path.join(run, 'model.onnx'));
  // A typo in the data path: the old run must survive.
  const typo = capture();
  const args = trainArgs(run, 1, '--overwrite');
  args[args.indexOf(data)] = path.join(dir, 'typo.jsonl');
  expect(await runCli(args, typo.io)).toBe(1);
  expect(typo.err.join('')).toMatch(/typo\.jsonl: cannot read \(ENOENT\)/);
  expect(fs.readFileSync(path.join(run, 'model.onnx')).equals(before)).toBe(true);
  // A valid rerun replaces it: one step now, and the old metrics are gone.
  const c = capture();
  expect(await runCli(trainArgs(run, 1, '--overwrite'), c.io)).toBe(0);
  expect(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  expect(fs.readFileSync(path.join(run, 'model.onnx')).equals(before)).toBe(false);
});

test('--resume and --overwrite together are refused', async () => {
  const c = capture();
  expect(await runCli([...trainArgs(path.join(dir, 'run'), 1, '--overwrite'), '--resume', path.join(dir, 'run')], c.io)).toBe(1);
  expect(c.err.join('')).toMatch(/give --resume \(continue the run\) or --overwrite \(replace it\), not both/);
});

test('two concurrent runs on one folder: the second refuses naming the holder', async () => {
  const run = path.join(dir, 'run');
  const child = spawn(process.execPath, [BIN, ...trainArgs(run, 100000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    // Wait until the first run holds the lock and has stepped.
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('"step":2')) resolve();
      });
      child.on('close', () => reject(new Error('the first run ended early')));
    });
    expect(readLock(run)?.pid).toBe(child.pid);
    const c = capture();
    expect(await runCli(trainArgs(run, 1), c.io)).toBe(1);
    expect(c.err.join('')).toMatch(new RegExp(`^grl-onnx: ${run.replace(/[/\\.]/g, '\\$&')}: in use by grl-onnx train \\(pid ${child.pid}, started \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z\\); wait for it to finish or give another folder\\n$`));
    // --overwrite does not break a live lock either.
    const o = capture();
    expect(await runCli(trainArgs(run, 1, '--overwrite'), o.io)).toBe(1);
    expect(o.err.join('')).toMatch(/in use by grl-onnx train/);
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
  }
}, 60000);

test('a stale lock (its process is gone) is taken over with a note', async () => {
  const run = path.join(dir, 'run');
  fs.mkdirSync(run);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(dead.stdout);
  fs.writeFileSync(path.join(run, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z', command: 'grl-onnx train' }));
  const c = capture();
  expect(await runCli(trainArgs(run, 1), c.io)).toBe(0);
  expect(c.err.join('')).toBe(`grl-onnx: warning: ${run}: took over a stale lock of pid ${pid} (started 2026-01-01T00:00:00.000Z), which no longer runs\n`);
  expect(fs.existsSync(path.join(run, 'model.onnx'))).toBe(true);
  expect(fs.existsSync(path.join(run, LOCK_FILE))).toBe(false);
});

describe('RunFolder', () => {
  test('claim creates and locks the folder; release removes the lock and the folder it created if empty', () => {
    const f = new RunFolder(path.join(dir, 'new'), { markers: ['model.onnx'] });
    expect(fs.existsSync(f.dir)).toBe(false);
    f.claim();
    expect(readLock(f.dir)).toEqual({ pid: process.pid, host: os.hostname(), started: expect.any(String), command: 'grl-onnx' });
    // The lock is exclusive within a process too.
    expect(() => new RunFolder(f.dir, { markers: ['model.onnx'] }).claim()).toThrow(`in use by grl-onnx (pid ${process.pid}`);
    f.release();
    expect(fs.existsSync(f.dir)).toBe(false);
  });
  test('a file where the folder should be: one line (not "cannot create the lock file (ENOTDIR)"), the file unchanged', async () => {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, 'not a folder');
    expect(() => new RunFolder(file, { markers: ['model.onnx'] })).toThrow(`${file}: is a file, not a folder; give a folder for the run's files`);
    const c = capture();
    expect(await runCli(['artifacts', TAGGER, '--loss', 'pos', '-o', file], c.io)).toBe(1);
    expect(c.err.join('')).toBe(`grl-onnx: ${file}: is a file, not a folder; give a folder for the run's files\n`);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a folder');
  });
  test('a folder holding a run of a command without resume: the line says --overwrite', () => {
    fs.writeFileSync(path.join(dir, 'report.json'), '{}');
    expect(() => new RunFolder(dir, { markers: ['report.json'] })).toThrow(`${dir}: already holds a run (report.json); use --overwrite to replace it, or give another folder`);
  });
});

describe('artifacts and experiment folders', () => {
  test('artifacts: a second write into the folder is refused; --overwrite replaces it', async () => {
    const out = path.join(dir, 'art');
    expect(await runCli(['artifacts', TAGGER, '--loss', 'pos', '-o', out], capture().io)).toBe(0);
    const meta = fs.readFileSync(path.join(out, 'artifacts.json'), 'utf8');
    const c = capture();
    expect(await runCli(['artifacts', TAGGER, '--loss', 'ner', '-o', out], c.io)).toBe(1);
    expect(c.err.join('')).toBe(`grl-onnx: ${out}: already holds a run (artifacts.json); use --overwrite to replace it, or give another folder\n`);
    expect(fs.readFileSync(path.join(out, 'artifacts.json'), 'utf8')).toBe(meta);
    expect(await runCli(['artifacts', TAGGER, '--loss', 'ner', '-o', out, '--overwrite'], capture().io)).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'artifacts.json'), 'utf8')).heads.map((h: { head: string }) => h.head)).toEqual(['ner']);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  test('experiment: a folder holding a report is refused before any work', async () => {
    fs.writeFileSync(path.join(dir, 'report.json'), '{"kept":true}');
    const c = capture();
    expect(await runCli(['experiment', '--quick', '--out', dir], c.io)).toBe(1);
    expect(c.err.join('')).toBe(`grl-onnx: ${dir}: already holds a run (report.json); use --overwrite to replace it, or give another folder\n`);
    expect(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).toBe('{"kept":true}');
  });
});
