// Checkpoints read from a file without loading it (checkpoint/read-file.ts): the structure is
// parsed through positioned page reads, the values go straight into their destination. Checked
// against loadCheckpoint on grl-onnx's layout and on ORT's (interleaved, unaligned), on corrupt
// and truncated files, and through TrainingSession.create, whose resume must be bit-identical.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { CheckpointState, NamedTensor, TensorPayload, loadCheckpoint, openCheckpoint, saveCheckpoint } from '../../src/train/checkpoint';
import { writeArtifacts } from '../../src/train/artifacts';
import { TrainingSession } from '../../src/train/session';
import { Model } from '../../src/onnx/io';
import { randn, rng } from '../helpers/build';
import { ortStyleCheckpoint } from '../helpers/ort-checkpoint';
import { D, inferenceModel, initialWeights, trainingGraphFor } from './linear-grl';

/** Big enough that a page-sized read is a small part of it: 3 × 1M floats and AdamW moments (~36 MB). */
function bigState(): CheckpointState {
  const r = rng(11);
  const t = (name: string, dims: number[]): NamedTensor => ({ name, dims, data: randn(r, dims.reduce((a, b) => a * b, 1)) });
  const trainable = [t('b.weight', [1024, 1024]), t('a.bias', [1 << 20]), t('c', [512, 2048])];
  return {
    version: 2,
    trainable,
    frozen: [t('frozen.table', [33, 7])],
    optimizerGroups: [{
      name: 'group0', step: 42, initialLearningRate: 0.5,
      states: trainable.map((p) => ({ paramName: p.name, momentums: [t('momentum0', p.dims), t('momentum1', p.dims)] })),
    }],
    properties: { ints: { 'data.offset': 7 }, floats: { learning_rate: 0.25 }, strings: { unicode: 'λ → ✓' } },
  };
}

/** The payloads' values, read the way a session reads them: into a destination of their size. */
function materialise(s: CheckpointState<TensorPayload>): CheckpointState {
  const read = (t: TensorPayload): NamedTensor => {
    const data = new Float32Array(t.length);
    t.readInto(data);
    return { name: t.name, dims: t.dims, data };
  };
  return {
    ...s,
    trainable: s.trainable.map(read),
    frozen: s.frozen.map(read),
    optimizerGroups: s.optimizerGroups.map((g) => ({ ...g, states: g.states.map((p) => ({ paramName: p.paramName, momentums: p.momentums.map(read) })) })),
  };
}

/** The state with each tensor's values as a SHA-256 of their bytes: exact, and cheap on ~9M floats. */
function plain(s: CheckpointState): unknown {
  const t = (x: NamedTensor) => ({ name: x.name, dims: x.dims, data: crypto.createHash('sha256').update(new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength)).digest('hex') });
  return { ...s, trainable: s.trainable.map(t), frozen: s.frozen.map(t), optimizerGroups: s.optimizerGroups.map((g) => ({ ...g, states: g.states.map((p) => ({ ...p, momentums: p.momentums.map(t) })) })) };
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '(no error)';
}

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ckpt-file-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());
/** The module object itself (the namespace import is a copy with getters, which jest cannot spy on). */
const realFs = require('fs') as typeof fs;

describe('openCheckpoint: the structure through page reads, values on demand', () => {
  const big = bigState();
  const payloadBytes = [...big.trainable, ...big.frozen, ...big.optimizerGroups[0].states.flatMap((s) => s.momentums)].reduce((n, t) => n + t.data.byteLength, 0);

  it.each([
    ['grl-onnx layout (metadata first)', (s: CheckpointState, f: string) => saveCheckpoint(s, f), true],
    // ORT sorts tensors by name: the values match loadCheckpoint's, not `big`'s order.
    ['ORT layout (tables beside their unaligned payloads)', (s: CheckpointState, f: string) => fs.writeFileSync(f, ortStyleCheckpoint(s)), false],
  ])('%s: same state as loadCheckpoint, reading only metadata pages', (_, write, sameOrder) => {
    const file = path.join(dir, `big-${sameOrder}`);
    write(big, file);
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(payloadBytes);
    const readFile = jest.spyOn(realFs, 'readFileSync');
    const opened = openCheckpoint(file);
    try {
      expect(readFile).not.toHaveBeenCalled();
      // Parsing touched a few pages per tensor (15 of them), nowhere near the ~36 MB of payloads.
      const metadata = opened.metadataBytesRead();
      expect(metadata).toBeGreaterThan(0);
      expect(metadata).toBeLessThan(payloadBytes / 100);
      const back = materialise(opened.state);
      // Reading the values adds no page reads: they went straight into the destinations.
      expect(opened.metadataBytesRead()).toBe(metadata);
      readFile.mockRestore();
      expect(plain(back)).toEqual(plain(loadCheckpoint(file)));
    } finally {
      opened.close();
    }
    if (sameOrder) {
      const again = openCheckpoint(file);
      expect(plain(materialise(again.state))).toEqual(plain(big));
      again.close();
    }
  });

  it('is public API: the package root exports the same openCheckpoint', async () => {
    const root = await import('../../src');
    expect(root.openCheckpoint).toBe(openCheckpoint);
    const file = path.join(dir, 'small');
    saveCheckpoint(big, file);
    const opened = root.openCheckpoint(file);
    try {
      expect(opened.state.trainable.map((t) => t.name)).toEqual(big.trainable.map((t) => t.name));
    } finally {
      opened.close();
    }
  });

  it('gives loadCheckpoint\'s one-line errors for missing, foreign, tiny, directory and truncated files', () => {
    const same = (file: string) => {
      const want = errorOf(() => loadCheckpoint(file));
      expect(want).not.toBe('(no error)');
      expect(want).not.toMatch(/\n/);
      expect(errorOf(() => openCheckpoint(file))).toBe(want);
      return want;
    };
    expect(same(path.join(dir, 'missing'))).toBe(`${path.join(dir, 'missing')}: cannot read checkpoint (no such file)`);
    const foreign = path.join(dir, 'foreign');
    fs.writeFileSync(foreign, Buffer.from('0123ORTMxxxxxxxxxxxx'));
    expect(same(foreign)).toBe(`${foreign}: not an ORT training checkpoint (file identifier 'ORTM', expected 'ODTC')`);
    const tiny = path.join(dir, 'tiny');
    fs.writeFileSync(tiny, Buffer.from('abc'));
    expect(same(tiny)).toBe(`${tiny}: not an ORT training checkpoint (3 bytes)`);
    expect(same(dir)).toBe(`${dir}: cannot read checkpoint (EISDIR)`);

    // A small checkpoint cut at every 7th byte: each cut fails, with the same line either way.
    const whole = path.join(dir, 'whole');
    const small: CheckpointState = { ...big, trainable: [{ name: 'w', dims: [3, 5], data: randn(rng(3), 15) }], optimizerGroups: [], frozen: [] };
    for (const [name, bytes] of [['grl', (saveCheckpoint(small, whole), fs.readFileSync(whole))], ['ort', ortStyleCheckpoint(small)]] as const) {
      let cuts = 0;
      for (let n = 8; n < bytes.length; n += 7) {
        const cut = path.join(dir, `cut-${name}`);
        fs.writeFileSync(cut, bytes.subarray(0, n));
        const want = errorOf(() => loadCheckpoint(cut));
        if (want === '(no error)') continue; // cut in the padding after the last payload
        expect([n, errorOf(() => openCheckpoint(cut))]).toEqual([n, want]);
        expect(want.startsWith(`${cut}: `)).toBe(true);
        cuts++;
      }
      expect(cuts).toBeGreaterThan(10);
    }
  });
});

describe('TrainingSession.create from a checkpoint path', () => {
  const w0 = initialWeights();
  const original: Model = { proto: inferenceModel(w0), source: 'linear-grl.onnx', unknownFields: [] };
  let artifacts: string;
  beforeAll(() => {
    artifacts = path.join(dir, 'artifacts');
    writeArtifacts(original, trainingGraphFor(w0), { optimizer: 'adamw', learningRate: 1e-2 }, artifacts);
  });

  const feeds = (seed: number) => ({
    x: new ort.Tensor('float32', randn(rng(seed), 4 * D), [4, D]),
    adv: new ort.Tensor('int64', BigInt64Array.of(0n, 1n, 1n, 0n), [4]),
  });
  async function step(s: TrainingSession, seed: number): Promise<number> {
    const out = await s.runTrainStep(feeds(seed));
    await s.runOptimizerStep();
    await s.lazyResetGrad();
    return (out.loss.data as Float32Array)[0];
  }
  const moments = (s: TrainingSession) => s.checkpointState().optimizerGroups[0].states.map((p) => p.momentums.map((m) => Array.from(m.data)));

  it.each([['grl-onnx', false], ['ORT (interleaved)', true]])('reads a %s checkpoint file straight into the arena and resumes bit for bit', async (_, ortLayout) => {
    const a = await TrainingSession.create(artifacts);
    for (const seed of [1, 2]) await step(a, seed);
    const file = path.join(dir, `mid-${ortLayout}`);
    if (ortLayout) fs.writeFileSync(file, ortStyleCheckpoint(a.checkpointState()));
    else await a.saveCheckpoint(file);

    const readFile = jest.spyOn(realFs, 'readFileSync');
    const readSync = jest.spyOn(realFs, 'readSync');
    const b = await TrainingSession.create({ artifactsDir: artifacts, checkpointState: file });
    expect(readFile.mock.calls.filter(([f]) => f === file)).toEqual([]);
    // Every parameter and moment value was read into the session's own memory (its arena).
    const arena = (b as unknown as { grads: Float32Array }).grads.buffer;
    const intoArena = readSync.mock.calls.filter(([, dst]) => (dst as Uint8Array).buffer === arena).reduce((n, c) => n + (c[3] as number), 0);
    expect(intoArena).toBe(b.getParametersSize() * 4 * 3);
    readFile.mockRestore();
    readSync.mockRestore();

    const c = await TrainingSession.create({ artifactsDir: artifacts, checkpointState: fs.readFileSync(file) });
    expect(b.optimizerStep).toBe(2);
    expect(Array.from((await b.getContiguousParameters(false)).data as Float32Array)).toEqual(Array.from((await c.getContiguousParameters(false)).data as Float32Array));
    expect(moments(b)).toEqual(moments(c));
    if (!ortLayout) expect(moments(b)).toEqual(moments(a));
    const losses = async (s: TrainingSession) => [await step(s, 3), await step(s, 4)];
    const [la, lb, lc] = [await losses(a), await losses(b), await losses(c)];
    expect(lb).toEqual(lc);
    if (!ortLayout) expect(lb).toEqual(la);
    expect(Array.from((await b.getContiguousParameters()).data as Float32Array)).toEqual(Array.from((await c.getContiguousParameters()).data as Float32Array));
    if (!ortLayout) expect(Array.from((await b.getContiguousParameters()).data as Float32Array)).toEqual(Array.from((await a.getContiguousParameters()).data as Float32Array));
    for (const s of [a, b, c]) await s.release();
  });

  it('a truncated checkpoint file fails create with one line and leaves no descriptor open', async () => {
    const file = path.join(dir, 'cut-session');
    const a = await TrainingSession.create(artifacts);
    await a.saveCheckpoint(file);
    await a.release();
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 40));
    const open = jest.spyOn(realFs, 'openSync');
    const close = jest.spyOn(realFs, 'closeSync');
    await expect(TrainingSession.create({ artifactsDir: artifacts, checkpointState: file })).rejects.toThrow(new RegExp(`^${file}: tensor '.+' has \\d+ bytes of data for dims`));
    const fds = open.mock.results.filter((r, i) => open.mock.calls[i][0] === file).map((r) => r.value);
    expect(fds).toHaveLength(1);
    expect(close.mock.calls.map(([fd]) => fd)).toContain(fds[0]);
  });
});
