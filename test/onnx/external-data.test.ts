// External data stays inside the model's folder: locations that escape it (`../x`,
// `sub/../../x`, an absolute path, a symlink out) are refused by inspect, patch and
// train with one line naming the tensor and location, and nothing is written; offsets
// and lengths are checked against the file and the tensor's dims before reading; and
// saves choose their own data file names inside the output's folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../src/cli/main';
import { loadModel, saveModel, serializeModel } from '../../src/onnx/io';
import { DATA_LOCATION_EXTERNAL, TensorProto } from '../../src/onnx/proto';
import { externalDataPath } from '../../src/onnx/external-path';
import { createOrtSession } from '../../src/onnx/ort';
import { ROOT } from '../helpers/bin';

const TAGGER = path.join(ROOT, 'models', 'tagger-opset17.onnx');
const BIAS = 'pos.out.bias'; // [17] float: 68 bytes

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

/** Every file under `dir` with its size and mtime, to prove nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else { const s = fs.lstatSync(p); out[path.relative(dir, p)] = `${s.size}:${s.mtimeMs}`; }
    }
  };
  walk(dir);
  return out;
}

let dir: string;
let modelDir: string;
const SECRET = 'secret: this file is outside the model folder, 68+ bytes long...........';

/** The tagger with BIAS moved to external data at `location` (offset/length as given). */
function writeModel(location: string, kv: Record<string, string> = {}): string {
  const m = loadModel(TAGGER);
  const t = (m.proto.graph?.initializer ?? []).find((x) => x.name === BIAS) as TensorProto;
  delete t.raw_data;
  t.data_location = DATA_LOCATION_EXTERNAL;
  t.external_data = [{ key: 'location', value: location }, ...Object.entries({ offset: '0', length: '68', ...kv }).map(([key, value]) => ({ key, value }))];
  const file = path.join(modelDir, 'model.onnx');
  fs.writeFileSync(file, serializeModel(m));
  return file;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-extdata-'));
  modelDir = path.join(dir, 'model');
  fs.mkdirSync(path.join(modelDir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'secret.txt'), SECRET);
  fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(modelDir, 'link.bin'));
  const line = JSON.stringify({ input_ids: [5, 6, 7], pos: [0, 1, 2], ner: [0, 0, 0] });
  fs.writeFileSync(path.join(dir, 'd.jsonl'), `${line}\n`);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const ESCAPES: [string, string][] = [
  ['../secret.txt', "a location with a '..' component"],
  ['sub/../../secret.txt', "a location with a '..' component"],
  ['/etc/hostname', 'an absolute location'],
  ['link.bin', `which resolves outside the model's folder (to ${'<secret>'})`],
];

describe.each(ESCAPES)('location %s', (location, why) => {
  const line = (model: string) => `grl-onnx: ${model}: tensor '${BIAS}' has external data at '${location}', ${why.replace('<secret>', fs.realpathSync(path.join(dir, 'secret.txt')))}; external data must be a file inside the model's folder\n`;

  test('inspect, patch and train refuse with one line and write nothing', async () => {
    const model = writeModel(location);
    const before = snapshot(dir);
    for (const args of [
      ['inspect', model],
      ['patch', model, '--head', 'pos', '-o', path.join(dir, 'out.onnx')],
      ['patch', model, '--head', 'pos', '--in-place'],
      ['train', model, '--data', path.join(dir, 'd.jsonl'), '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')],
      ['artifacts', model, '--loss', 'pos', '-o', path.join(dir, 'art')],
    ]) {
      const c = capture();
      expect([args[0], await runCli(args, c.io)]).toEqual([args[0], 1]);
      expect(c.err.join('')).toBe(line(model));
    }
    expect(snapshot(dir)).toEqual(before);
    expect(fs.readFileSync(path.join(dir, 'secret.txt'), 'utf8')).toBe(SECRET);
  });

  test('the library load path and the session helper refuse too', async () => {
    const model = writeModel(location);
    expect(() => loadModel(model)).toThrow(`tensor '${BIAS}' has external data at '${location}'`);
    await expect(createOrtSession(model)).rejects.toThrow(`tensor '${BIAS}' has external data at '${location}'`);
  });
});

test('a location inside the folder (also through a symlink that stays inside) loads', () => {
  fs.writeFileSync(path.join(modelDir, 'sub', 'w.bin'), Buffer.alloc(68));
  fs.symlinkSync(path.join(modelDir, 'sub', 'w.bin'), path.join(modelDir, 'inside.bin'));
  expect(loadModel(writeModel('sub/w.bin')).source).toContain('model.onnx');
  expect(loadModel(writeModel('inside.bin')).source).toContain('model.onnx');
  expect(externalDataPath(modelDir, 'sub/w.bin', 't', 'm')).toBe(path.join(modelDir, 'sub', 'w.bin'));
});

describe('offset and length are checked before reading', () => {
  beforeEach(() => fs.writeFileSync(path.join(modelDir, 'w.bin'), Buffer.alloc(100)));
  test('length against dims × element size (the issue: 28 bytes for a larger tensor)', () => {
    const model = writeModel('w.bin', { length: '28' });
    expect(() => loadModel(model)).toThrow(`${model}: tensor '${BIAS}' has 28 bytes of external data but its dims [17] of FLOAT need 68`);
  });
  test('offset + length against the file size', () => {
    const model = writeModel('w.bin', { offset: '64' });
    expect(() => loadModel(model)).toThrow(`${model}: external data of tensor '${BIAS}' runs past the end of 'w.bin' (64+68 > 100 bytes)`);
  });
  test('offset and length must be non-negative integers', () => {
    expect(() => loadModel(writeModel('w.bin', { offset: '-4' }))).toThrow(`tensor '${BIAS}' has external offset '-4', not a non-negative integer`);
    expect(() => loadModel(writeModel('w.bin', { length: '6.5e1' }))).toThrow(`tensor '${BIAS}' has external length '6.5e1', not a non-negative integer`);
  });
});

describe('saves choose their own data file names', () => {
  test('an in-place save of a model read from weights.bin writes model.onnx.data in its folder and leaves weights.bin', () => {
    fs.writeFileSync(path.join(modelDir, 'weights.bin'), Buffer.alloc(68, 1));
    const file = writeModel('weights.bin');
    const outside = snapshot(dir);
    saveModel(loadModel(file), file, { externalData: { threshold: 64 } });
    const after = snapshot(dir);
    const changed = Object.keys(after).filter((k) => after[k] !== outside[k]);
    expect(changed.sort()).toEqual(['model/model.onnx', 'model/model.onnx.data']);
    expect(fs.readFileSync(path.join(modelDir, 'weights.bin'))).toEqual(Buffer.alloc(68, 1));
  });

  test('an in-place save of an escaping model (built in memory) writes nothing outside its folder', () => {
    const file = writeModel('../secret.txt');
    // Bypass the load checks: the proto as a library user might assemble it.
    const proto = loadModel(TAGGER).proto;
    const t = (proto.graph?.initializer ?? []).find((x) => x.name === BIAS) as TensorProto;
    delete t.raw_data;
    t.data_location = DATA_LOCATION_EXTERNAL;
    t.external_data = [{ key: 'location', value: '../secret.txt' }, { key: 'length', value: '68' }];
    const before = snapshot(dir);
    expect(() => saveModel({ proto, source: file, baseDir: modelDir, unknownFields: [] }, file)).toThrow("has external data at '../secret.txt', a location with a '..' component");
    expect(snapshot(dir)).toEqual(before);
    expect(fs.readFileSync(path.join(dir, 'secret.txt'), 'utf8')).toBe(SECRET);
  });

  test('a data file name given to saveModel must be a plain name', () => {
    const m = loadModel(TAGGER);
    expect(() => saveModel(m, path.join(dir, 'o.onnx'), { externalData: { location: '../x.data' } })).toThrow('an external data file name must be a plain file name');
    expect(fs.existsSync(path.join(dir, 'x.data'))).toBe(false);
  });
});

describe('external data outside the main initializers (a Constant value, a subgraph)', () => {
  /** The tagger with its first 8-byte Constant's value moved to external data at `location`. */
  function constantModel(location: string): { file: string; node: string } {
    const m = loadModel(TAGGER);
    const n = (m.proto.graph?.node ?? []).find((x) => x.op_type === 'Constant' && (x.attribute?.[0]?.t?.raw_data?.length ?? 0) === 8);
    const t = n?.attribute?.[0]?.t as TensorProto;
    delete t.raw_data;
    t.data_location = DATA_LOCATION_EXTERNAL;
    t.external_data = [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '8' }];
    const file = path.join(modelDir, 'model.onnx');
    fs.writeFileSync(file, serializeModel(m));
    return { file, node: n?.name as string };
  }

  test('an escaping location in a Constant is refused by inspect, patch and train; nothing is written', async () => {
    const { file, node } = constantModel('../secret.txt');
    const before = snapshot(dir);
    for (const args of [
      ['inspect', file],
      ['patch', file, '--head', 'pos', '-o', path.join(dir, 'out.onnx')],
      ['train', file, '--data', path.join(dir, 'd.jsonl'), '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')],
    ]) {
      const c = capture();
      expect([args[0], await runCli(args, c.io)]).toEqual([args[0], 1]);
      expect(c.err.join('')).toBe(`grl-onnx: ${file}: tensor '${node}.value' has external data at '../secret.txt', a location with a '..' component; external data must be a file inside the model's folder\n`);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  test('an inside location in a Constant is refused too: saves re-home only main initializers', () => {
    fs.writeFileSync(path.join(modelDir, 'w.bin'), Buffer.alloc(8));
    const { file, node } = constantModel('w.bin');
    expect(() => loadModel(file)).toThrow(`tensor '${node}.value' (attribute 'value' of node '${node}') has external data; grl-onnx reads external data only for the main graph's initializers`);
  });
});
