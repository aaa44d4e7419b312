// onnxruntime's own logger never reaches stderr (spawned CLI, real failing run): a
// failing kernel becomes one grl-onnx line naming the node and what to do; --debug
// lets ORT's log through. Plus the message translations on ORT's real texts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as ort from 'onnxruntime-node';
import { BIN, ROOT, ensureBuilt } from '../helpers/bin';
import { loadModel, saveModel, serializeModel } from '../../src/onnx/io';
import { dimsOf, float32Tensor } from '../../src/onnx/tensor';
import { explainOrtError } from '../../src/onnx/ort-errors';
import { createOrtSession } from '../../src/onnx/ort';
import { F, I64, makeModel, valueInfo } from '../helpers/build';

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ortlog-'));
  // The second case: a bias initializer with an extra leading dimension.
  const m = loadModel(path.join(ROOT, 'models', 'tagger-opset17.onnx'));
  const bias = (m.proto.graph?.initializer ?? []).find((t) => t.name === 'pos.out.bias');
  if (!bias?.raw_data) throw new Error('fixture changed: no pos.out.bias');
  expect(dimsOf(bias)).toEqual([17]);
  bias.dims = [2, 17];
  bias.raw_data = Buffer.concat([bias.raw_data, bias.raw_data]);
  saveModel(m, path.join(dir, 'bad-bias.onnx'));
  const line = JSON.stringify({ input_ids: [5, 6, 7, 8], pos: [0, 1, 2, 3], ner: [0, 0, 0, 0] });
  fs.writeFileSync(path.join(dir, 'd.jsonl'), `${line}\n${line}\n`);
  fs.writeFileSync(path.join(dir, 'dev.jsonl'), `${line}\n`);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: dir });
}

const PROBE = ['probe', 'bad-bias.onnx', '--data', 'd.jsonl', '--eval', 'dev.jsonl', '--label', 'ner', '--at', 'pos_logits'];

test('a failing run: one grl-onnx line naming the node, no onnxruntime log', () => {
  const r = cli(...PROBE);
  expect(r.status).toBe(1);
  expect(r.stderr).toBe("grl-onnx: onnxruntime failed at node '/pos/out/Add' (Add): cannot broadcast a dimension of 2 against 4; two of its inputs have shapes that do not fit together: if one is an initializer, the model file is inconsistent (`grl-onnx inspect MODEL` lists such problems); if one follows the sequence length, check the data against the model's sequence limit\n");
  expect(r.stderr).not.toMatch(/onnxruntime:|sequential_executor/);
});

test('train failing inside onnxruntime at step 1: one line, no log, and no half-made run folder', () => {
  const r = cli('train', 'bad-bias.onnx', '--data', 'd.jsonl', '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '2', '--threads', '1', '--out', 'run');
  expect(r.status).toBe(1);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toMatch(/^grl-onnx: onnxruntime /);
  expect(r.stderr).not.toMatch(/onnxruntime:|sequential_executor/);
  // Before: artifacts/ and an empty metrics.jsonl stayed behind.
  expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
});

test('--debug lets onnxruntime\'s log through, then the same line and the stack', () => {
  const r = cli(...PROBE, '--debug');
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/\[E:onnxruntime:, sequential_executor\.cc:\d+ ExecuteKernel\] Non-zero status code returned while running Add node/);
  expect(r.stderr).toContain("grl-onnx: onnxruntime failed at node '/pos/out/Add' (Add)");
});

describe('explainOrtError on onnxruntime\'s real messages', () => {
  const vi = (n: string, t: number, d: (number | string)[]) => valueInfo(n, t, d);
  async function failure(model: ReturnType<typeof makeModel>, feeds: Record<string, ort.Tensor>): Promise<unknown> {
    const s = await createOrtSession(serializeModel(model));
    try {
      await s.run(feeds);
    } catch (e) {
      return e;
    } finally {
      await s.release();
    }
    throw new Error('the run did not fail');
  }

  test('Gather out of range', async () => {
    const m = makeModel({ nodes: [{ op_type: 'Gather', name: 'emb', input: ['table', 'ids'], output: ['y'] }], inputs: [vi('ids', I64, ['n'])], outputs: [vi('y', F, ['n', 2])], initializers: [float32Tensor('table', [4, 2], new Float32Array(8))] });
    const e = await failure(m, { ids: new ort.Tensor('int64', BigInt64Array.of(1n, 9n), [2]) });
    expect(explainOrtError(e)?.message).toBe("onnxruntime failed at node 'emb' (Gather): indices element out of data bounds, idx=9 must be within the inclusive range [-4,3]; an index is outside the table it reads: an id in the data is not in the model's vocabulary (is the tokenizer the model's?) or a sequence is longer than its position table");
  });

  test('a fixed input dimension', async () => {
    const m = makeModel({ nodes: [{ op_type: 'Identity', input: ['x'], output: ['y'] }], inputs: [vi('x', F, ['n', 3])], outputs: [vi('y', F, ['n', 3])] });
    const e = await failure(m, { x: new ort.Tensor('float32', new Float32Array(10), [2, 5]) });
    expect(explainOrtError(e)?.message).toBe("onnxruntime refused input 'x': dimension 1 is 5 but the model expects 3; the model fixes that dimension (`grl-onnx inspect MODEL` shows its input and output shapes)");
  });

  test('Reshape to a size that does not fit', async () => {
    const m = makeModel({ nodes: [{ op_type: 'Reshape', name: 'r', input: ['x', 'shape'], output: ['y'] }], inputs: [vi('x', F, ['n'])], outputs: [vi('y', F, [3, 3])], initializers: [{ name: 'shape', data_type: 7, dims: [2], raw_data: new Uint8Array(BigInt64Array.of(3n, 3n).buffer) }] });
    const e = await failure(m, { x: new ort.Tensor('float32', new Float32Array(10), [10]) });
    expect(explainOrtError(e)?.message).toMatch(/^onnxruntime failed at node 'r' \(Reshape\): .*requested shape.*; a Reshape got a tensor whose size does not match the shape it asks for/);
  });

  test('not an onnxruntime error: left alone', () => {
    expect(explainOrtError(new Error('something else'))).toBeUndefined();
  });
});
