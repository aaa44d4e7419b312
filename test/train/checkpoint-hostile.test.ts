// Checkpoints from strangers: crafted counts, lengths, offsets and dims, and fuzzed bytes of
// a checkpoint grl-onnx writes and of one laid out as ORT lays it out. Every failure of
// loadCheckpoint(bytes), openCheckpoint(path) (the path TrainingSession.create reads) and
// TrainingSession.create itself is one GrlError line naming the file, found without
// allocating more than the file's size and without reading past its end.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Builder } from 'flatbuffers';
import { CheckpointState, loadCheckpoint, openCheckpoint, serializeCheckpoint } from '../../src/train/checkpoint';
import { GrlError } from '../../src/onnx/errors';
import { writeArtifacts } from '../../src/train/artifacts';
import { TrainingSession } from '../../src/train/session';
import { Model } from '../../src/onnx/io';
import { ortStyleCheckpoint } from '../helpers/ort-checkpoint';
import { inferenceModel, initialWeights, trainingGraphFor } from './linear-grl';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ckpt-hostile-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const small: CheckpointState = {
  version: 2,
  trainable: [{ name: 'w', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
  frozen: [{ name: 'f', dims: [2], data: Float32Array.from([7, 8]) }],
  optimizerGroups: [{ name: 'g', step: 3, initialLearningRate: 0.1, states: [{ paramName: 'w', momentums: [{ name: 'momentum0', dims: [2, 3], data: new Float32Array(6) }] }] }],
  properties: { ints: { a: 1 }, floats: { b: 2 }, strings: { c: 'x' } },
};

/** The message of what `f` throws: it must be a one-line GrlError (anything else fails the test). */
function failure(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (!(e instanceof GrlError)) throw new Error(`not a GrlError: ${(e as Error).constructor.name}: ${(e as Error).message}`);
    expect(e.message).not.toMatch(/\n/);
    return e.message;
  }
  return undefined;
}

/** Both readers on the same bytes: loadCheckpoint on the buffer and openCheckpoint on a file of them (values read too). */
function bothReaders(bytes: Uint8Array): [string | undefined, string | undefined] {
  const file = path.join(dir, 'ckpt');
  fs.writeFileSync(file, bytes);
  const inMemory = failure(() => loadCheckpoint(bytes, file));
  const paged = failure(() => {
    const c = openCheckpoint(file);
    try {
      const s = c.state;
      for (const t of [...s.trainable, ...s.frozen, ...s.optimizerGroups.flatMap((g) => g.states.flatMap((p) => p.momentums))]) t.readInto(new Float32Array(t.length));
    } finally {
      c.close();
    }
  });
  return [inMemory, paged];
}

/** Follow uoffsets from the root: the byte position of field `slot` of the table at `table`. */
function fieldAt(bytes: Uint8Array, table: number, slot: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vtable = table - dv.getInt32(table, true);
  const o = dv.getUint16(vtable + 4 + 2 * slot, true);
  expect(o).toBeGreaterThan(0);
  return table + o;
}
const deref = (bytes: Uint8Array, at: number) => at + new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);

describe('checkpoint readers on crafted files', () => {
  it.each([['grl-onnx', serializeCheckpoint(small)], ['ORT', ortStyleCheckpoint(small)]])('a %s checkpoint whose parameter vector claims 2^31-1 entries fails with one line, without allocating them', (_, good) => {
    const bytes = Uint8Array.from(good);
    const root = deref(bytes, 0);
    const module = deref(bytes, fieldAt(bytes, root, 1));
    const vector = deref(bytes, fieldAt(bytes, module, 0));
    new DataView(bytes.buffer).setInt32(vector, 0x7fffffff, true);
    const file = path.join(dir, 'ckpt');
    const want = `${file}: corrupt ORT training checkpoint (vector of 2147483647 at byte ${vector + 4} runs past the end of the ${bytes.length}-byte file)`;
    expect(bothReaders(bytes)).toEqual([want, want]);
  });

  it('a checkpoint whose string claims more bytes than the file has fails with one line', () => {
    const bytes = Uint8Array.from(serializeCheckpoint(small));
    const root = deref(bytes, 0);
    const group = deref(bytes, deref(bytes, fieldAt(bytes, root, 2)) + 4);
    const name = deref(bytes, fieldAt(bytes, group, 0));
    new DataView(bytes.buffer).setInt32(name, 1 << 30, true);
    const want = `${path.join(dir, 'ckpt')}: corrupt ORT training checkpoint (string of ${1 << 30} at byte ${name + 4} runs past the end of the ${bytes.length}-byte file)`;
    expect(bothReaders(bytes)).toEqual([want, want]);
  });

  it('a vector of offsets all pointing at one table with long dims fails before reading the dims again and again', () => {
    // 40k × 60k dims would be 2.4e9 numbers from a 700 KB file: the reader stops at the file's size.
    const b = new Builder(1 << 20);
    b.startVector(8, 60000, 8);
    for (let i = 0; i < 60000; i++) b.addInt64(BigInt(1));
    const dims = b.endVector();
    const raw = b.createByteVector(new Uint8Array(4));
    b.startObject(6);
    b.addFieldOffset(2, dims, 0);
    b.addFieldInt32(3, 1, 0);
    b.addFieldOffset(4, raw, 0);
    const t = b.endObject();
    b.startVector(4, 40000, 4);
    for (let i = 0; i < 40000; i++) b.addOffset(t);
    const vec = b.endVector();
    b.startObject(4);
    b.addFieldOffset(0, vec, 0);
    const module = b.endObject();
    b.startObject(4);
    b.addFieldInt32(0, 2, 0);
    b.addFieldOffset(1, module, 0);
    b.finish(b.endObject(), 'ODTC');
    const bytes = b.asUint8Array();
    const want = `${path.join(dir, 'ckpt')}: corrupt ORT training checkpoint (its vectors and strings add up to more than the file's ${bytes.length} bytes (overlapping offsets))`;
    expect(bothReaders(bytes)).toEqual([want, want]);
  });

  it('negative dims whose product matches the data are refused', () => {
    const bytes = serializeCheckpoint({ ...small, trainable: [{ name: 'w', dims: [-2, -3], data: new Float32Array(6) }], optimizerGroups: [] });
    const want = `${path.join(dir, 'ckpt')}: tensor 'w' has dims [-2, -3]`;
    expect(bothReaders(bytes)).toEqual([want, want]);
  });

  it.each([['grl-onnx', serializeCheckpoint(small)], ['ORT', ortStyleCheckpoint(small)]])('a fuzzed %s checkpoint: each byte flipped or cut fails with one GrlError line or loads, the same way from bytes and from the file', (_, good) => {
    let failures = 0;
    const started = Date.now();
    for (let i = 0; i < good.length; i++) {
      for (const v of [0x00, 0xff, 0x7f, 0x80, good[i] ^ 1, good[i] ^ 0x40]) {
        const bytes = Uint8Array.from(good);
        bytes[i] = v;
        const [a, b] = bothReaders(bytes);
        expect([i, v, b]).toEqual([i, v, a]);
        if (a) failures++;
      }
    }
    for (let n = 0; n < good.length; n++) {
      const [a, b] = bothReaders(good.subarray(0, n));
      expect([n, b]).toEqual([n, a]);
    }
    expect(failures).toBeGreaterThan(good.length); // the fuzzing does reach the checks
    expect(Date.now() - started).toBeLessThan(60000);
  });
});

describe('TrainingSession.create on a hostile checkpoint file', () => {
  let artifacts: string;
  beforeAll(() => {
    const w0 = initialWeights();
    const original: Model = { proto: inferenceModel(w0), source: 'linear-grl.onnx', unknownFields: [] };
    artifacts = path.join(dir, 'artifacts');
    writeArtifacts(original, trainingGraphFor(w0), { optimizer: 'adamw', learningRate: 1e-2 }, artifacts);
  });

  it.each([
    ['null', 'not an object'],
    ['[1]', 'not an object'],
    ['{"optimizer":"lion"}', 'optimizer "lion"'],
    ['{"lambdas":{"adv":"big"}}', 'lambdas'],
    ['{"lambdaSchedule":{"schedule":{"kind":"cosine"},"totalSteps":3}}', 'lambdaSchedule'],
  ])('session settings %s in the checkpoint fail create with one line naming the file', async (json, why) => {
    const a = await TrainingSession.create(artifacts);
    const state = a.checkpointState();
    await a.release();
    state.properties.strings['grl-onnx.session'] = json;
    const file = path.join(dir, 'settings.ckpt');
    fs.writeFileSync(file, serializeCheckpoint(state));
    await expect(TrainingSession.create({ artifactsDir: artifacts, checkpointState: file })).rejects.toMatchObject({
      name: 'GrlError', file, message: `${file}: checkpoint property 'grl-onnx.session' is not grl-onnx session settings (${why})`,
    });
  });

  it('every corrupted byte of a session checkpoint fails create with one GrlError line naming the file, or resumes', async () => {
    const a = await TrainingSession.create(artifacts);
    const file = path.join(dir, 'session.ckpt');
    await a.saveCheckpoint(file);
    await a.release();
    const good = fs.readFileSync(file);
    const others: string[] = [];
    for (let i = 0; i < good.length; i += 3) { // every third byte, payloads included
      const bytes = Uint8Array.from(good);
      bytes[i] ^= i % 2 ? 0xff : 0x41;
      fs.writeFileSync(file, bytes);
      try {
        const s = await TrainingSession.create({ artifactsDir: artifacts, checkpointState: file });
        await s.release();
      } catch (e) {
        const m = (e as Error).message;
        if (!(e instanceof GrlError) || /\n/.test(m) || !m.includes(file)) others.push(`byte ${i}: ${(e as Error).constructor.name}: ${m}`);
      }
    }
    expect(others).toEqual([]);
  });
});
