// Model I/O hardening: round trips with bit-identical ORT outputs, zero-copy
// loading, fields unknown to the schema, external data, bad inputs, and the
// guarantees of saving (atomic, never over the input, stdout sink).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { loadModel, saveModel, serializeModel } from '../src/onnx/io';
import { ModelFormatError } from '../src/onnx/errors';
import { DATA_LOCATION_EXTERNAL, messageType } from '../src/onnx/proto';
import { isExternal, tensorByteLength, tensorBytes } from '../src/onnx/tensor';
import { expectSameOutputs, feedsFor, fixturePaths, runOrt } from './helpers/models';
import { rng } from './helpers/build';
import { patchModel } from '../src/patch/patch';
import { isGrlNode } from '../src/patch/heads';
import { runCli } from '../src/cli/main';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-io-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const TAGGER = fixturePaths().find((f) => f.endsWith('tagger-opset14.onnx'))!;

describe('round trip', () => {
  it.each(fixturePaths().map((f) => [path.basename(f), f]))('%s: load + save gives bit-identical ORT outputs', async (_name, file) => {
    const m = loadModel(file);
    expect(m.unknownFields).toEqual([]);
    const out = path.join(dir, 'copy.onnx');
    saveModel(m, out);
    const feeds = feedsFor(m.proto);
    for (const level of ['disabled', 'all'] as const) expectSameOutputs(await runOrt(out, feeds, level), await runOrt(file, feeds, level));
    // Saving is stable: a second round trip writes the same bytes.
    const out2 = path.join(dir, 'copy2.onnx');
    saveModel(loadModel(out), out2);
    expect(Buffer.compare(fs.readFileSync(out2), fs.readFileSync(out))).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['copy.onnx', 'copy2.onnx']);
  });

  it('keeps large initializer bytes as views of the loaded buffer (zero-copy)', () => {
    const buf = fs.readFileSync(TAGGER);
    const m = loadModel(buf);
    const big = m.proto.graph!.initializer!.filter((t) => (t.raw_data?.length ?? 0) >= 4096);
    expect(big.length).toBeGreaterThan(0);
    for (const t of big) expect(t.raw_data!.buffer).toBe(buf.buffer);
  });

  it('writes to a stdout sink exactly the bytes it would write to a file', () => {
    const m = loadModel(TAGGER);
    const chunks: Buffer[] = [];
    saveModel(m, '-', { stdout: (c) => chunks.push(Buffer.from(c)) });
    expect(Buffer.compare(Buffer.concat(chunks), serializeModel(m))).toBe(0);
  });
});

/** A protobuf field (varint) with a number the ONNX schema does not define. */
function unknownVarint(field: number, value: number): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32(field << 3).uint32(value).finish());
}

describe('fields unknown to the schema', () => {
  it('a model-level unknown field loads, but saving refuses and writes nothing', () => {
    const bytes = Buffer.concat([fs.readFileSync(TAGGER), unknownVarint(99, 1)]);
    const m = loadModel(bytes, { name: 'odd.onnx' });
    expect(m.unknownFields).toEqual(['model.#99']);
    const out = path.join(dir, 'out.onnx');
    expect(() => saveModel(m, out)).toThrow("odd.onnx: refusing to save: it has fields unknown to grl-onnx's ONNX schema (model.#99); saving would drop them");
    expect(() => saveModel(m, '-', { stdout: () => undefined })).toThrow(/refusing to save/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('an unknown field nested in the graph is found by its path', () => {
    const m = loadModel(TAGGER);
    // Re-assemble the model with the graph message carrying field 1000.
    const { graph, ...rest } = m.proto;
    const graphBytes = Buffer.concat([Buffer.from(messageType('GraphProto').encode(graph!).finish()), unknownVarint(1000, 5)]);
    const w = protobuf.Writer.create().uint32((7 << 3) | 2).uint32(graphBytes.length);
    const bytes = Buffer.concat([Buffer.from(messageType('ModelProto').encode(rest).finish()), Buffer.from(w.finish()), graphBytes]);
    const odd = loadModel(bytes);
    expect(odd.unknownFields).toEqual(['model.graph.#1000']);
    expect(() => saveModel(odd, path.join(dir, 'x.onnx'))).toThrow(/model\.graph\.#1000/);
  });
});

describe('external data', () => {
  it('saves large initializers externally, loads them lazily, and keeps them external on re-save', async () => {
    const m = loadModel(TAGGER);
    const ext = path.join(dir, 'ext.onnx');
    saveModel(m, ext, { externalData: { threshold: 1024 } });
    expect(fs.readdirSync(dir).sort()).toEqual(['ext.onnx', 'ext.onnx.data']);
    expect(fs.statSync(ext).size).toBeLessThan(fs.statSync(TAGGER).size / 2);

    const loaded = loadModel(ext);
    const external = loaded.proto.graph!.initializer!.filter(isExternal);
    expect(external.length).toBeGreaterThan(0);
    for (const t of external) {
      expect(t.raw_data?.length ?? 0).toBe(0); // not read at load time
      expect(t.data_location).toBe(DATA_LOCATION_EXTERNAL);
      expect(tensorByteLength(t)).toBeGreaterThanOrEqual(1024);
    }
    // The bytes read on demand are the original tensor's.
    const orig = new Map(m.proto.graph!.initializer!.map((t) => [t.name, t]));
    for (const t of external) expect(Buffer.compare(Buffer.from(tensorBytes(t, loaded.baseDir)), Buffer.from(tensorBytes(orig.get(t.name)!)))).toBe(0);

    const feeds = feedsFor(m.proto);
    const expected = await runOrt(TAGGER, feeds);
    expectSameOutputs(await runOrt(ext, feeds), expected);

    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const again = path.join(sub, 'again.onnx');
    saveModel(loaded, again);
    expect(fs.readdirSync(sub).sort()).toEqual(['again.onnx', 'again.onnx.data']);
    expect(loadModel(again).proto.graph!.initializer!.filter(isExternal).length).toBe(external.length);
    expectSameOutputs(await runOrt(again, feeds), expected);
    expect(() => saveModel(loaded, '-', { stdout: () => undefined })).toThrow('cannot write a model with external data to stdout; give -o FILE');
  });

  it('a missing or short external data file is a load error naming the tensor', () => {
    const ext = path.join(dir, 'ext.onnx');
    saveModel(loadModel(TAGGER), ext, { externalData: true });
    fs.truncateSync(`${ext}.data`, 100);
    expect(() => loadModel(ext)).toThrow(/ext\.onnx: external data of tensor '.*' runs past the end of 'ext\.onnx\.data'/);
    fs.rmSync(`${ext}.data`);
    expect(() => loadModel(ext)).toThrow(/ext\.onnx: external data file 'ext\.onnx\.data' of tensor '.*' not found/);
  });
});

describe('bad inputs are one-line ModelFormatErrors naming the file', () => {
  function expectBad(src: string | Buffer, message: RegExp, name = 'bad.onnx'): void {
    let err: unknown;
    try {
      loadModel(src, { name });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFormatError);
    const msg = (err as Error).message;
    expect(msg).toMatch(message);
    expect(msg).not.toContain('\n');
  }

  it('empty file', () => {
    const f = path.join(dir, 'empty.onnx');
    fs.writeFileSync(f, '');
    expectBad(f, /^.*empty\.onnx: empty file, not an ONNX model$/);
  });

  it('JSON given as a model', () => {
    const f = path.join(dir, 'model.json');
    fs.writeFileSync(f, JSON.stringify({ graph: { node: [] } }));
    expectBad(f, /model\.json: looks like JSON, not an ONNX model/);
    expectBad(Buffer.from('  [1, 2]'), /^bad\.onnx: looks like JSON/);
  });

  it('a text file, a directory and a missing file', () => {
    const f = path.join(dir, 'notes.txt');
    fs.writeFileSync(f, 'hello, this is not a model\n');
    expectBad(f, /notes\.txt: not a valid ONNX model/);
    expectBad(dir, /is a directory, not a model file/);
    expectBad(path.join(dir, 'nope.onnx'), /nope\.onnx: no such file/);
  });

  it('truncated at every one of 300 cut points', () => {
    const bytes = fs.readFileSync(TAGGER);
    const r = rng(1);
    const cuts = [1, 2, 3, 10, 100, bytes.length - 1, bytes.length - 2, bytes.length - 5, bytes.length - 20];
    while (cuts.length < 300) cuts.push(1 + Math.floor(r() * (bytes.length - 2)));
    for (const cut of cuts) expectBad(bytes.subarray(0, cut), /^bad\.onnx: (not a valid ONNX model: |not an ONNX model: )/);
  });

  it('random bytes', () => {
    const r = rng(2);
    for (let k = 0; k < 50; k++) {
      const b = Buffer.alloc(1 + Math.floor(r() * 5000));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      if (b[0] === 0x7b || b[0] === 0x5b) b[0] = 0;
      expectBad(b, /^bad\.onnx: (not a valid ONNX model|not an ONNX model)/);
    }
  });
});

describe('saving', () => {
  it('never overwrites the input, also through a symlink', () => {
    const f = path.join(dir, 'm.onnx');
    fs.copyFileSync(TAGGER, f);
    fs.symlinkSync(f, path.join(dir, 'link.onnx'));
    const m = loadModel(f);
    expect(() => saveModel(m, f, { protect: [f] })).toThrow(/m\.onnx: refusing to overwrite the input model \(write the result to another file with -o\)/);
    expect(() => saveModel(m, path.join(dir, 'link.onnx'), { protect: [f] })).toThrow(/refusing to overwrite the input model/);
    expect(fs.readdirSync(dir).sort()).toEqual(['link.onnx', 'm.onnx']);
  });

  it('replaces an existing output atomically and leaves no temp files', () => {
    const out = path.join(dir, 'out.onnx');
    fs.writeFileSync(out, 'old');
    saveModel(loadModel(TAGGER), out);
    expect(Buffer.compare(fs.readFileSync(out), serializeModel(loadModel(TAGGER)))).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['out.onnx']);
  });

  it('reports an unwritable destination as one line', () => {
    expect(() => saveModel(loadModel(TAGGER), path.join(dir, 'no', 'such', 'dir', 'x.onnx'))).toThrow(/x\.onnx: cannot write \(ENOENT\)/);
  });
});

describe('automatic external data', () => {
  it('moves large initializers to OUT.data when the model would pass the protobuf limit, and loads back identically', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-autoext-'));
    const src = loadModel(path.join(__dirname, '..', 'models', 'tagger-opset17.onnx'));
    const out = path.join(dir, 'm.onnx');
    saveModel(src, out); // under the default limit: one file
    expect(fs.existsSync(`${out}.data`)).toBe(false);
    saveModel(src, out, { autoExternalAbove: 1000 }); // as if the model were over 2 GB
    expect(fs.existsSync(`${out}.data`)).toBe(true);
    const back = loadModel(out);
    const ext = back.proto.graph!.initializer!.filter(isExternal);
    expect(ext.length).toBeGreaterThan(10);
    const orig = new Map(src.proto.graph!.initializer!.map((t) => [t.name, t]));
    for (const t of back.proto.graph!.initializer!) expect(Buffer.from(tensorBytes(t, back.baseDir)).equals(Buffer.from(tensorBytes(orig.get(t.name)!, src.baseDir)))).toBe(true);
  });
});

describe('in-place save of a model with external data', () => {
  const FRESH = /^m\.onnx\.[0-9a-f]{8}\.data$/;
  /** m.onnx + m.onnx.data in the temp dir, and the bytes and ORT outputs of the original. */
  async function externalCopy() {
    const m = path.join(dir, 'm.onnx');
    saveModel(loadModel(TAGGER), m, { externalData: { threshold: 1024 } });
    const loaded = loadModel(m);
    const bytes = new Map(loaded.proto.graph!.initializer!.map((t) => [t.name, Buffer.from(tensorBytes(t, loaded.baseDir))]));
    const feeds = feedsFor(loaded.proto);
    return { m, bytes, feeds, outputs: await runOrt(m, feeds) };
  }
  function expectWeights(file: string, bytes: Map<string | undefined, Buffer>): void {
    const back = loadModel(file);
    const inits = back.proto.graph!.initializer!;
    expect(inits.filter(isExternal).length).toBeGreaterThan(10);
    expect(inits.map((t) => t.name).sort()).toEqual([...bytes.keys()].sort());
    for (const t of inits) expect([t.name, Buffer.from(tensorBytes(t, back.baseDir)).equals(bytes.get(t.name)!)]).toEqual([t.name, true]);
  }
  const grlCount = (file: string) => loadModel(file).proto.graph!.node!.filter(isGrlNode).length;

  afterEach(() => jest.restoreAllMocks());

  it('writes fresh data, then the model, then deletes the old data; a second save goes back to <model>.data', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    saveModel(patchModel(loadModel(m), { heads: [{ name: 'pos' }] }).model, m);
    const files = fs.readdirSync(dir).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toBe('m.onnx');
    expect(files[1]).toMatch(FRESH);
    expect(grlCount(m)).toBe(1);
    expectWeights(m, bytes);
    expectSameOutputs(await runOrt(m, feeds), outputs);
    // In place again: the free default name is used and the fresh file is gone.
    saveModel(patchModel(loadModel(m), { heads: [], remove: true }).model, m);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'm.onnx.data']);
    expect(grlCount(m)).toBe(0);
    expectWeights(m, bytes);
    expectSameOutputs(await runOrt(m, feeds), outputs);
  });

  it('grl-onnx patch --in-place on a model with external data', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    let err = '';
    const code = await runCli(['patch', m, '--head', 'pos', '--in-place'], { stdout: { write: () => true, isTTY: true }, stderr: { write: (t) => (err += t) } });
    expect(err).toMatch(/wrote .*m\.onnx\n$/);
    expect(code).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', expect.stringMatching(FRESH)]);
    expect(grlCount(m)).toBe(1);
    expectWeights(m, bytes);
    expectSameOutputs(await runOrt(m, feeds), outputs);
  });

  it('a crash at the model rename leaves the original model with its original data, and no new files', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    const before = { model: fs.readFileSync(m), data: fs.readFileSync(`${m}.data`) };
    const rename = fs.renameSync;
    const renamed: string[] = [];
    // The fs module object itself (the `import * as fs` namespace has read-only bindings).
    jest.spyOn(require('fs') as typeof fs, 'renameSync').mockImplementation((from, to) => {
      if (path.resolve(String(to)) === path.resolve(m)) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
      renamed.push(path.basename(String(to)));
      rename(from, to);
    });
    expect(() => saveModel(patchModel(loadModel(m), { heads: [{ name: 'pos' }] }).model, m)).toThrow('simulated crash');
    jest.restoreAllMocks();
    // The new data had been renamed into place under its fresh name before the model rename failed.
    expect(renamed).toEqual([expect.stringMatching(FRESH)]);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'm.onnx.data']);
    expect(fs.readFileSync(m).equals(before.model)).toBe(true);
    expect(fs.readFileSync(`${m}.data`).equals(before.data)).toBe(true);
    expect(grlCount(m)).toBe(0);
    expectWeights(m, bytes);
    expectSameOutputs(await runOrt(m, feeds), outputs);
  });

  it('saving next to a model whose data has the output\'s name leaves that data alone', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    // b.onnx reads m.onnx.data; saving a copy of it as m.onnx must not overwrite that file.
    const b = path.join(dir, 'b.onnx');
    fs.renameSync(m, b);
    const data = fs.readFileSync(`${m}.data`);
    saveModel(loadModel(b), m);
    expect(fs.readFileSync(`${m}.data`).equals(data)).toBe(true);
    const files = fs.readdirSync(dir);
    expect(files.filter((f) => !FRESH.test(f)).sort()).toEqual(['b.onnx', 'm.onnx', 'm.onnx.data']);
    expect(files.filter((f) => FRESH.test(f))).toHaveLength(1);
    for (const f of [b, m]) {
      expectWeights(f, bytes);
      expectSameOutputs(await runOrt(f, feeds), outputs);
    }
  });

  it('replacing another model at the output: a crash at the model rename leaves that model with its own data; a finished save removes it', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    const other = path.join(dir, 'o.onnx');
    saveModel(patchModel(loadModel(m), { heads: [{ name: 'pos' }] }).model, other, { externalData: { threshold: 1024 } });
    const before = { model: fs.readFileSync(other), data: fs.readFileSync(`${other}.data`) };
    const rename = fs.renameSync;
    jest.spyOn(require('fs') as typeof fs, 'renameSync').mockImplementation((from, to) => {
      if (path.resolve(String(to)) === path.resolve(other)) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
      rename(from, to);
    });
    expect(() => saveModel(loadModel(m), other)).toThrow('simulated crash');
    jest.restoreAllMocks();
    expect(fs.readFileSync(other).equals(before.model)).toBe(true);
    expect(fs.readFileSync(`${other}.data`).equals(before.data)).toBe(true);
    expect(grlCount(other)).toBe(1);
    expectWeights(other, bytes);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'm.onnx.data', 'o.onnx', 'o.onnx.data']);
    // Without the crash: the new model reads fresh data and the replaced model's data is gone.
    saveModel(loadModel(m), other);
    const files = fs.readdirSync(dir).sort();
    expect(files.filter((f) => f.startsWith('o.onnx'))).toEqual(['o.onnx', expect.stringMatching(/^o\.onnx\.[0-9a-f]{8}\.data$/)]);
    expect(grlCount(other)).toBe(0);
    expectWeights(other, bytes);
    expectSameOutputs(await runOrt(other, feeds), outputs);
  });

  it('keeps a data file not named after the model (it may be shared): another model reading it still loads', async () => {
    const { m, bytes, feeds, outputs } = await externalCopy();
    const a = path.join(dir, 'a.onnx');
    const b = path.join(dir, 'b.onnx');
    saveModel(loadModel(m), a, { externalData: { threshold: 1024, location: 'weights.bin' } });
    fs.copyFileSync(a, b); // b.onnx reads weights.bin too
    saveModel(patchModel(loadModel(a), { heads: [{ name: 'pos' }] }).model, a);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.onnx', 'a.onnx.data', 'b.onnx', 'm.onnx', 'm.onnx.data', 'weights.bin']);
    expect(grlCount(a)).toBe(1);
    for (const f of [a, b]) {
      expectWeights(f, bytes);
      expectSameOutputs(await runOrt(f, feeds), outputs);
    }
  });
});
