// Sequence limits read from the graph, the per-line check every data path runs, the
// --truncate path, and the activation-memory refusal.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../src/onnx/io';
import { checkBatchMemory, checkSequenceLength, estimateTrainingBytes, sequenceLimit } from '../../src/onnx/limits';
import { parseJsonl, countTruncated, DataSpec } from '../../src/data/jsonl';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor';
import { runCli } from '../../src/cli/main';
import { F, I64, makeModel, valueInfo } from '../helpers/build';
import { modelFromProto } from '../helpers/models';

const ROOT = path.resolve(__dirname, '..', '..');
const TAGGER = path.join(ROOT, 'models', 'tagger-opset17.onnx');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)) }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

describe('sequenceLimit', () => {
  test('the fixtures: the position table has 64 rows', () => {
    for (const f of ['tagger-opset17.onnx', 'tagger-opset14.onnx', 'classifier.onnx', 'tiny-tagger.onnx']) {
      expect(sequenceLimit(loadModel(path.join(ROOT, 'models', f)))).toEqual({ limit: 64, source: "position table 'encoder.embeddings.position.weight' has 64 rows" });
    }
  });

  test('zoo exports: RoBERTa positions start at padding_idx + 1; T5 relative buckets bound nothing', () => {
    const zoo = (f: string) => sequenceLimit(loadModel(path.join(ROOT, 'models', 'zoo', f)));
    expect(zoo('roberta-opset17.onnx')).toEqual({ limit: 38, source: "position table 'roberta.embeddings.position_embeddings.weight' has 40 rows (positions start at 2)" });
    expect(zoo('distilbert-opset17.onnx')?.limit).toBe(40);
    expect(zoo('t5-opset17.onnx')).toBeUndefined();
  });

  const word = float32Tensor('word.weight', [10, 4], new Float32Array(40));
  const pos = float32Tensor('pos.weight', [16, 4], new Float32Array(64));

  test('a model with only a word embedding has no limit', () => {
    const m = makeModel({
      nodes: [{ op_type: 'Gather', input: ['word.weight', 'input_ids'], output: ['y'] }],
      inputs: [valueInfo('input_ids', I64, ['batch', 'sequence'])], outputs: [valueInfo('y', F, ['batch', 'sequence', 4])], initializers: [word],
    });
    expect(sequenceLimit(modelFromProto(m))).toBeUndefined();
  });

  test('a static sequence dim', () => {
    const m = makeModel({
      nodes: [{ op_type: 'Gather', input: ['word.weight', 'input_ids'], output: ['y'] }],
      inputs: [valueInfo('input_ids', I64, ['batch', 12])], outputs: [valueInfo('y', F, ['batch', 12, 4])], initializers: [word],
    });
    expect(sequenceLimit(modelFromProto(m))).toEqual({ limit: 12, source: "input 'input_ids' has a static sequence dim of 12" });
  });

  test('positions from Range over the input shape', () => {
    const m = makeModel({
      nodes: [
        { op_type: 'Shape', input: ['input_ids'], output: ['shape'] },
        { op_type: 'Gather', input: ['shape', 'one'], output: ['len'] },
        { op_type: 'Range', input: ['zero', 'len', 'one'], output: ['positions'] },
        { op_type: 'Gather', input: ['pos.weight', 'positions'], output: ['p'] },
        { op_type: 'Gather', input: ['word.weight', 'input_ids'], output: ['w'] },
        { op_type: 'Add', input: ['w', 'p'], output: ['y'] },
      ],
      inputs: [valueInfo('input_ids', I64, ['batch', 'sequence'])], outputs: [valueInfo('y', F, ['batch', 'sequence', 4])],
      initializers: [word, pos, int64Tensor('zero', [], [0]), int64Tensor('one', [], [1])],
    });
    expect(sequenceLimit(modelFromProto(m))).toEqual({ limit: 16, source: "position table 'pos.weight' has 16 rows" });
  });

  test('RoBERTa-style positions (CumSum of the mask + padding_idx) start at padding_idx + 1', () => {
    const m = makeModel({
      nodes: [
        { op_type: 'Not', input: ['is_pad'], output: ['keep'] },
        { op_type: 'Equal', input: ['input_ids', 'pad'], output: ['is_pad'] },
        { op_type: 'Cast', input: ['keep'], output: ['mask'], attribute: [{ name: 'to', type: 2, i: I64 }] },
        { op_type: 'CumSum', input: ['mask', 'one'], output: ['cs'] },
        { op_type: 'Mul', input: ['cs', 'mask'], output: ['cm'] },
        { op_type: 'Add', input: ['cm', 'pad'], output: ['positions'] },
        { op_type: 'Gather', input: ['pos.weight', 'positions'], output: ['y'] },
      ],
      inputs: [valueInfo('input_ids', I64, ['batch', 'sequence'])], outputs: [valueInfo('y', F, ['batch', 'sequence', 4])],
      initializers: [pos, int64Tensor('pad', [], [1]), int64Tensor('one', [], [1])],
    });
    // Rows 0..15, the first position is 2, so 14 tokens fit (like roberta-base: 514 rows, 512 tokens).
    expect(sequenceLimit(modelFromProto(m))).toEqual({ limit: 14, source: "position table 'pos.weight' has 16 rows (positions start at 2)" });
  });
});

describe('the per-line check', () => {
  const limit = { limit: 4, source: 'test' };
  test('within the limit, or truncated to it', () => {
    expect(checkSequenceLength('f:1', 'input_ids', 4, limit)).toBe(4);
    expect(checkSequenceLength('f:1', 'input_ids', 9, limit, true)).toBe(4);
    expect(checkSequenceLength('f:1', 'input_ids', 900, undefined)).toBe(900);
  });
  test('over the limit: one line with file:line, length and limit', () => {
    expect(() => checkSequenceLength('d.jsonl:7', 'input_ids', 9, limit)).toThrow("d.jsonl:7: 'input_ids' has 9 tokens but the model takes at most 4 (test); shorten it or pass --truncate to cut such examples");
  });

  const spec: DataSpec = {
    inputs: ['input_ids', 'attention_mask'], optionalInputs: { attention_mask: 1 },
    labels: [{ key: 'pos', tokenLevel: true, numClasses: 3 }, { key: 'cls', tokenLevel: false, numClasses: 2 }], sequenceLimit: limit,
  };
  const text = [
    JSON.stringify({ input_ids: [1, 2, 3], pos: [0, 1, 2], cls: 1 }),
    JSON.stringify({ input_ids: [1, 2, 3, 4, 5, 6], attention_mask: [1, 1, 1, 1, 1, 0], pos: [0, 1, 2, 0, 1, 2], cls: 0 }),
  ].join('\n');

  test('ids JSONL: the second line is refused', () => {
    expect(() => parseJsonl(text, 'd.jsonl', spec)).toThrow("d.jsonl:2: 'input_ids' has 6 tokens but the model takes at most 4");
  });
  test('ids JSONL with truncate: inputs and token labels cut, sequence labels kept, counted', () => {
    const ex = parseJsonl(text, 'd.jsonl', { ...spec, truncate: true });
    expect(countTruncated(ex)).toBe(1);
    expect(ex[0].truncatedFrom).toBeUndefined();
    expect(ex[1]).toEqual({
      line: 2, length: 4, truncatedFrom: 6,
      inputs: { input_ids: Int32Array.of(1, 2, 3, 4), attention_mask: Int32Array.of(1, 1, 1, 1) },
      labels: { pos: Float64Array.of(0, 1, 2, 0), cls: 0 },
    });
  });
  test('MSE token labels are cut by tokens × width', () => {
    const mse: DataSpec = { inputs: ['input_ids'], labels: [{ key: 'v', tokenLevel: true, kind: 'mse', dims: [2] }], sequenceLimit: { limit: 2, source: 'test' }, truncate: true };
    const ex = parseJsonl(JSON.stringify({ input_ids: [1, 2, 3], v: [[1, 2], [3, 4], [5, 6]] }), 'm.jsonl', mse);
    expect(ex[0].labels.v).toEqual(Float64Array.of(1, 2, 3, 4));
  });
});

describe('activation memory', () => {
  const model = loadModel(TAGGER);
  test('the estimate grows linearly in the batch (shape tensors aside) and at least linearly in the length', () => {
    const one = estimateTrainingBytes(model, 1, 32);
    expect(one).toBeGreaterThan(0);
    expect(estimateTrainingBytes(model, 8, 32)).toBeGreaterThan(7.9 * one);
    expect(estimateTrainingBytes(model, 8, 32)).toBeLessThanOrEqual(8 * one);
    expect(estimateTrainingBytes(model, 1, 64)).toBeGreaterThanOrEqual(2 * one);
  });
  test('a batch beyond the memory is refused with one line; a reasonable one passes', () => {
    expect(() => checkBatchMemory(model, 32, 64)).not.toThrow();
    const need = estimateTrainingBytes(model, 4096, 64);
    expect(() => checkBatchMemory(model, 4096, 64, need - 1)).toThrow(/^batch size 4096 × 64 tokens needs about [0-9.]+ GiB of activations per step, more than this machine's [0-9.]+ GiB of memory; lower --batch-size/);
  });
});

describe('train, probe and experiment refuse an over-long line before writing anything', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-limits-'));
    const long = JSON.stringify({ input_ids: Array(100).fill(5), pos: Array(100).fill(0), ner: Array(100).fill(0) });
    const short = JSON.stringify({ input_ids: [5, 6, 7], pos: [0, 1, 2], ner: [0, 0, 0] });
    fs.writeFileSync(path.join(dir, 'long.jsonl'), `${short}\n${long}\n`);
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), `${short}\n${short}\n`);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('train: the issue reproduction, no run folder left behind', async () => {
    const c = capture();
    const code = await runCli(['train', TAGGER, '--data', path.join(dir, 'long.jsonl'), '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')], c.io);
    expect(code).toBe(1);
    expect(c.err.join('')).toBe(`grl-onnx: ${path.join(dir, 'long.jsonl')}:2: 'input_ids' has 100 tokens but the model takes at most 64 (position table 'encoder.embeddings.position.weight' has 64 rows); shorten it or pass --truncate to cut such examples\n`);
    expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
  });

  test('train --truncate: runs, and says how many examples it cut', async () => {
    const c = capture();
    const code = await runCli(['train', TAGGER, '--data', path.join(dir, 'long.jsonl'), '--loss', 'pos', '--lr', '1e-3', '--steps', '2', '--batch-size', '2', '--truncate', '--json', '--out', path.join(dir, 'run')], c.io);
    expect(c.err.join('')).toBe("grl-onnx: warning: truncated 1 example to the model's sequence limit (--truncate)\n");
    expect(code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'run', 'model.onnx'))).toBe(true);
  });

  test('probe', async () => {
    const c = capture();
    const code = await runCli(['probe', TAGGER, '--data', path.join(dir, 'long.jsonl'), '--label', 'pos', '--eval', path.join(dir, 'dev.jsonl')], c.io);
    expect(code).toBe(1);
    expect(c.err.join('')).toMatch(/long\.jsonl:2: 'input_ids' has 100 tokens but the model takes at most 64 /);
  });

  test('experiment: no report folder', async () => {
    const cfg = path.join(dir, 'exp.json');
    fs.writeFileSync(cfg, JSON.stringify({ kind: 'tagger', model: TAGGER, data: { train: path.join(dir, 'long.jsonl'), dev: path.join(dir, 'dev.jsonl'), test: path.join(dir, 'dev.jsonl') } }));
    const c = capture();
    const code = await runCli(['experiment', cfg, '--quick', '--out', path.join(dir, 'exp')], c.io);
    expect(code).toBe(1);
    expect(c.err.join('')).toMatch(/long\.jsonl:2: 'input_ids' has 100 tokens but the model takes at most 64 /);
    expect(fs.existsSync(path.join(dir, 'exp'))).toBe(false);
  });
});
