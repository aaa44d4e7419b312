import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ByteBuffer } from 'flatbuffers';
import { CheckpointState, layoutCheckpoint, loadCheckpoint, saveCheckpoint, serializeCheckpoint } from '../../src/train/checkpoint';
import { GrlError } from '../../src/onnx/errors';
import { randn, rng } from '../helpers/build';

function sampleState(): CheckpointState {
  const r = rng(7);
  return {
    version: 2,
    trainable: [
      { name: '/encoder/layer.0/attention/query/MatMul.weight', dims: [4, 6], data: randn(r, 24) },
      { name: 'onnx::MatMul_123', dims: [6], data: randn(r, 6) },
      { name: 'scalar-ish', dims: [1], data: Float32Array.of(-0) },
    ],
    frozen: [{ name: 'embeddings.word', dims: [5, 3], data: randn(r, 15) }],
    optimizerGroups: [{
      name: 'group0',
      step: 1234567890123,
      initialLearningRate: 0.0010000000474974513,
      states: [
        { paramName: 'onnx::MatMul_123', momentums: [{ name: 'momentum0', dims: [6], data: randn(r, 6) }, { name: 'momentum1', dims: [6], data: randn(r, 6) }] },
      ],
    }],
    properties: {
      ints: { 'data.epoch': 3, 'data.offset': 2 ** 40 + 5, negative: -7 },
      floats: { 'grl.adv.lambda': 0.25, learning_rate: 0.5 },
      strings: { optimizer: 'adamw', 'grl-onnx.session': '{"learningRate":0.001}', unicode: 'λ → ✓' },
    },
  };
}

describe('ORT training checkpoint (flatbuffer, "ODTC")', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ckpt-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips names, dims, values, optimizer state and the property bag exactly', () => {
    const s = sampleState();
    const file = path.join(dir, 'checkpoint');
    saveCheckpoint(s, file);
    const back = loadCheckpoint(file);
    expect(back.version).toBe(2);
    const plain = (ts: CheckpointState['trainable']) => ts.map((t) => ({ name: t.name, dims: t.dims, data: Array.from(t.data) }));
    expect(plain(back.trainable)).toEqual(plain(s.trainable));
    expect(Object.is(back.trainable[2].data[0], -0)).toBe(true);
    expect(plain(back.frozen)).toEqual(plain(s.frozen));
    const g = back.optimizerGroups[0];
    expect({ name: g.name, step: g.step, lr: g.initialLearningRate }).toEqual({ name: 'group0', step: 1234567890123, lr: 0.0010000000474974513 });
    expect(g.states.map((p) => ({ param: p.paramName, m: plain(p.momentums) }))).toEqual(s.optimizerGroups[0].states.map((p) => ({ param: p.paramName, m: plain(p.momentums) })));
    expect(back.properties).toEqual(s.properties);
  });

  it('writes ORT\'s file identifier and root layout (readable by a generic flatbuffer reader)', () => {
    const bytes = serializeCheckpoint(sampleState());
    expect(Buffer.from(bytes.subarray(4, 8)).toString('latin1')).toBe('ODTC');
    const bb = new ByteBuffer(bytes);
    const root = bb.readInt32(0);
    // Checkpoint.version is field 0 (vtable slot 4).
    const o = bb.__offset(root, 4);
    expect(bb.readInt32(root + o)).toBe(2);
  });

  it('lays out metadata only: payloads are written from the caller\'s arrays, never copied into a builder', () => {
    const big = new Float32Array(1 << 22).map((_, i) => i % 977);
    const s = { ...sampleState(), trainable: [...sampleState().trainable, { name: 'big', dims: [1024, 4096], data: big }] };
    const layout = layoutCheckpoint(s);
    // 16 MB of values, a few KB of tables, names and dims.
    expect(layout.meta.length).toBeLessThan(4096);
    const payload = layout.payloads.find((p) => p.data.length === big.length);
    expect(payload?.data).toBe(big);
    expect(layout.payloads.every((p) => (p.at + 4) % 16 === 0)).toBe(true);
    const file = path.join(dir, 'checkpoint');
    saveCheckpoint(s, file);
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBe(layout.size);
    expect(Buffer.compare(bytes, Buffer.from(serializeCheckpoint(s)))).toBe(0);
    expect(Array.from(loadCheckpoint(file).trainable[3].data.subarray(970, 980))).toEqual([970, 971, 972, 973, 974, 975, 976, 0, 1, 2]);
  });

  it('round-trips a checkpoint whose metadata outgrows the writer\'s first buffer (BERT-base has ~600 tensors)', () => {
    const r = rng(3);
    const trainable = Array.from({ length: 700 }, (_, i) => ({ name: `bert.encoder.layer.${i}.attention.self.query.weight.with.a.long.name`, dims: [2, 1], data: randn(r, 2) }));
    const s = { ...sampleState(), trainable };
    const back = loadCheckpoint(serializeCheckpoint(s));
    expect(back.trainable.map((t) => t.name)).toEqual(trainable.map((t) => t.name));
    expect(back.trainable.map((t) => Array.from(t.data))).toEqual(trainable.map((t) => Array.from(t.data)));
    expect(back.properties).toEqual(s.properties);
  });

  it('points every offset forward (flatbuffers\' uoffsets are unsigned) and keeps scalars aligned', () => {
    const bytes = serializeCheckpoint(sampleState());
    const bb = new ByteBuffer(bytes);
    const visit = (table: number, depth: number): void => {
      const vtable = table - bb.readInt32(table);
      expect(vtable % 2).toBe(0);
      expect(table % 4).toBe(0);
      const fields = (bb.readInt16(vtable) - 4) / 2;
      for (let f = 0; f < fields; f++) {
        const o = bb.__offset(table, 4 + 2 * f);
        if (!o) continue;
        const at = table + o;
        // Offsets and int32/float fields are 4-aligned; int64 fields (OptimizerGroup.step, IntProperty.value) 8-aligned.
        expect(at % (depth === 1 && f === 1 ? 8 : 4)).toBe(0);
        // Root fields 1-3 and group fields 0 and 3 are references: the target lies after the field.
        const isRef = depth === 0 ? f >= 1 : f === 0 || f === 3;
        if (isRef) expect(bb.__indirect(at)).toBeGreaterThan(at);
      }
    };
    const root = bb.readInt32(0);
    expect(root).toBeGreaterThan(0);
    visit(root, 0);
    const groups = bb.__vector(root + bb.__offset(root, 8));
    const group = bb.__indirect(groups);
    expect(group).toBeGreaterThan(groups);
    visit(group, 1);
    expect(bb.readInt64(group + bb.__offset(group, 6))).toBe(1234567890123n);
  });

  it('stores tensor payloads 16-byte aligned, so loaded values are views of the file buffer', () => {
    const bytes = serializeCheckpoint(sampleState());
    const copy = new Uint8Array(new ArrayBuffer(bytes.byteLength));
    copy.set(bytes);
    const back = loadCheckpoint(copy);
    for (const t of [...back.trainable, ...back.frozen]) {
      expect(t.data.buffer).toBe(copy.buffer);
      expect(t.data.byteOffset % 16).toBe(0);
    }
  });

  it('overwrites atomically: the new file replaces the old one and no temp file is left', () => {
    const file = path.join(dir, 'checkpoint');
    saveCheckpoint(sampleState(), file);
    const s2 = sampleState();
    s2.optimizerGroups[0].step = 5;
    saveCheckpoint(s2, file);
    expect(loadCheckpoint(file).optimizerGroups[0].step).toBe(5);
    expect(fs.readdirSync(dir)).toEqual(['checkpoint']);
  });

  it.each([NaN, Infinity, -Infinity, 2 ** 63, -(2 ** 64)])('refuses an int property of %p with one line, and writes nothing', (v) => {
    const file = path.join(dir, 'checkpoint');
    const s = sampleState();
    s.properties.ints['data.offset'] = v;
    expect(() => saveCheckpoint(s, file)).toThrow(new GrlError(`checkpoint int property 'data.offset' is ${v}; int properties hold int64 values`));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('rejects files that are not checkpoints with one line', () => {
    const a = path.join(dir, 'a');
    fs.writeFileSync(a, Buffer.from('0123ORTMxxxxxxxxxxxx'));
    expect(() => loadCheckpoint(a)).toThrow(`${a}: not an ORT training checkpoint (file identifier 'ORTM', expected 'ODTC')`);
    expect(() => loadCheckpoint(path.join(dir, 'missing'))).toThrow('cannot read checkpoint (no such file)');
    expect(() => loadCheckpoint(new Uint8Array(3), 'tiny')).toThrow('tiny: not an ORT training checkpoint (3 bytes)');
  });

  it('reports a truncated checkpoint instead of returning garbage', () => {
    const bytes = serializeCheckpoint(sampleState());
    const cut = bytes.slice(0, Math.floor(bytes.length / 2));
    expect(() => loadCheckpoint(cut, 'cut')).toThrow(/^cut: /);
  });
});
