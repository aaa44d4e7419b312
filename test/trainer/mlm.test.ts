// `--loss mlm` in the trainer, on the decoder fixture's `lm` head ([B, T, 128]):
// the step and eval metrics recounted from the model's own logits at the masked
// positions, exact resume, learning, plain-text data through a (stub) tokenizer
// with truncation, MLM-head detection, and the CLI's one-line errors.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { train, TrainerOptions } from '../../src/train/trainer';
import { BatchOrder, Example, IGNORE_INDEX, makeBatch } from '../../src/data/jsonl';
import { EVAL_STREAM, Masker } from '../../src/data/masking';
import { mlmHeads } from '../../src/train/mlm';
import type { TextTokenizer } from '../../src/tokenize/tokenizer';
import { runCli } from '../../src/cli/main';
import { modelPath, REPO_ROOT } from '../fixtures/reference';
import { addHeads } from '../../src/heads/add';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-mlm-'));
const MODEL = modelPath('decoder');
const MASK = 127;
const SPECIAL = [0, 1, 2];

/** Sentences [1, w…, 2] of ordinary ids 3..126; with `repeat`, one id repeated (learnable by a causal model). */
function sentences(n: number, seed: number, repeat = false): number[][] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => {
    const len = 4 + Math.floor(rand() * 10);
    const w = 3 + Math.floor(rand() * 124);
    return [1, ...Array.from({ length: len }, () => (repeat ? w : 3 + Math.floor(rand() * 124))), 2];
  });
}

function writeJsonl(file: string, rows: number[][]): Example[] {
  fs.writeFileSync(file, rows.map((ids) => JSON.stringify({ input_ids: ids, attention_mask: ids.map(() => 1) })).join('\n') + '\n');
  return rows.map((ids, i) => ({ line: i + 1, length: ids.length, inputs: { input_ids: Int32Array.from(ids), attention_mask: new Int32Array(ids.length).fill(1) }, labels: {} }));
}

const masker = (seed: number) => new Masker({ maskTokenId: MASK, vocabSize: 128, specialIds: SPECIAL, seed });

/** Loss, argmax hits and count of the `lm` head over the masked positions, from the model's logits, in float64. */
async function recount(modelFile: string, examples: Example[]): Promise<{ loss: number; hits: number; count: number }> {
  const session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: 1 });
  const spec = { inputs: ['input_ids', 'attention_mask'], labels: [{ key: 'lm', tokenLevel: true }] };
  const batch = makeBatch(examples, spec);
  const feeds = { input_ids: new ort.Tensor('int64', batch.inputs.input_ids, [batch.size, batch.seqLen]), attention_mask: new ort.Tensor('int64', batch.inputs.attention_mask, [batch.size, batch.seqLen]) };
  const logits = (await session.run(feeds)).lm_logits.data as Float32Array;
  await session.release();
  const labels = batch.labels.lm as BigInt64Array;
  let loss = 0;
  let hits = 0;
  let count = 0;
  for (let p = 0; p < labels.length; p++) {
    const y = Number(labels[p]);
    if (y === IGNORE_INDEX) continue;
    const row = logits.subarray(p * 128, (p + 1) * 128);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
    loss += lse - row[y];
    if (row.indexOf(max) === y) hits++;
    count++;
  }
  return { loss: loss / count, hits, count };
}

function weights(file: string): Map<string, Float32Array> {
  const m = loadModel(file);
  return new Map((m.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1).map((t) => [t.name ?? '', tensorToFloat32(t, m.baseDir)]));
}

const base = (data: string, out: string): TrainerOptions => ({
  model: MODEL, data, out, threads: 1, losses: [{ head: 'lm', kind: 'mlm' }], mlm: { maskTokenId: MASK, specialIds: SPECIAL },
  optimizer: 'adamw', lr: 1e-3, batchSize: 4, seed: 3, steps: 6,
});

describe('--loss mlm on the decoder fixture', () => {
  it("step 1's MLM loss and accuracy are those of the initial model on the (seed, epoch 0, index) masks", async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    const examples = writeJsonl(data, sentences(12, 1));
    const steps: { losses: Record<string, number>; accuracy: Record<string, number> }[] = [];
    await train({ ...base(data, path.join(dir, 'run')), steps: 1 }, { onStep: (r) => steps.push(r) });
    const idx = new BatchOrder(12, 4, true, 3).batch(0);
    const m = masker(3);
    const ref = await recount(MODEL, idx.map((i) => m.maskExample(examples[i], 0, i, 'input_ids', ['lm'])));
    expect(ref.count).toBeGreaterThanOrEqual(4);
    expect(steps[0].losses.lm).toBeCloseTo(ref.loss, 5);
    expect(steps[0].accuracy.lm).toBe(ref.hits / ref.count);
  });

  it('eval scores the same masked positions every time; its accuracy and loss match a recount on the trained model', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    const dev = path.join(dir, 'dev.jsonl');
    writeJsonl(data, sentences(16, 2, true));
    const devExamples = writeJsonl(dev, sentences(9, 5, true));
    const evals: { heads: Record<string, { loss: number; accuracy?: number; count: number }> }[] = [];
    const s = await train({ ...base(data, path.join(dir, 'run')), eval: dev, evalEvery: 3, steps: 6 }, { onEval: (e) => evals.push(e) });
    expect(evals).toHaveLength(2);
    const m = masker(3);
    const masked = devExamples.map((e, i) => m.maskExample(e, EVAL_STREAM, i, 'input_ids', ['lm']));
    const ref = await recount(s.model, masked);
    expect(evals[0].heads.lm.count).toBe(ref.count);
    expect(evals[1].heads.lm.count).toBe(ref.count);
    expect(evals[1].heads.lm.accuracy).toBe(ref.hits / ref.count);
    expect(evals[1].heads.lm.loss).toBeCloseTo(ref.loss, 4);
  });

  it('resumes a run interrupted after 3 of 6 steps (across an epoch boundary) to exactly the uninterrupted weights and metrics', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    writeJsonl(data, sentences(10, 4));
    const opts = (out: string): TrainerOptions => ({ ...base(data, out), eval: data, evalEvery: 2 });
    await train(opts(path.join(dir, 'straight')));
    let n = 0;
    const first = await train(opts(path.join(dir, 'split')), { onStep: () => n++, shouldStop: () => n >= 3 });
    expect(first.interrupted).toBe(true);
    const second = await train({ ...opts(path.join(dir, 'split')), resume: path.join(dir, 'split') });
    expect(second.startStep).toBe(3);
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'split', 'model.onnx'));
    expect(a.size).toBeGreaterThan(10);
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
    const lines = (d: string) => fs.readFileSync(path.join(dir, d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const key = (l: { step?: number; losses?: unknown; accuracy?: unknown; eval?: unknown }) => JSON.stringify(l.eval ?? [l.step, l.losses, l.accuracy]);
    expect(lines('split').map(key)).toEqual(lines('straight').map(key));
  });

  it('learns: masked-token accuracy on repeated-token sentences goes from chance (1/124) to far above it, and the loss falls', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    const dev = path.join(dir, 'dev.jsonl');
    writeJsonl(data, sentences(64, 6, true));
    writeJsonl(dev, sentences(64, 7, true));
    const evals: { loss: number; accuracy?: number }[] = [];
    await train({ ...base(data, path.join(dir, 'run')), eval: dev, evalEvery: 10, steps: 80, batchSize: 16, lr: 3e-3 }, { onEval: (e) => evals.push(e.heads.lm) });
    const first = evals[0];
    const last = evals[evals.length - 1];
    // Dev sentences repeat words the training set may not have: the head learns to copy the visible ones.
    expect(first.accuracy).toBeLessThan(0.1);
    expect(last.accuracy).toBeGreaterThan(0.3);
    expect(last.loss).toBeLessThan(first.loss - 0.3);
  });
});

/** A word-level stub of src/tokenize's TextTokenizer: [CLS]=1 words [SEP]=2, word ids 3..126 by a hash. */
const wordId = (w: string) => 3 + ([...w.toLowerCase()].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 124);
const stubTokenizer: TextTokenizer = {
  file: 'stub.json',
  vocabSize: 128,
  maskTokenId: MASK,
  padTokenId: 0,
  specialIds: new Set([0, 1, 2, MASK]),
  encodeWords(words: string[], opts?: { addSpecialTokens?: boolean }) {
    const ids = words.map(wordId);
    if (opts?.addSpecialTokens === false) return { ids, wordIds: words.map((_, i) => i), specialTokensMask: ids.map(() => 0) };
    return { ids: [1, ...ids, 2], wordIds: [null, ...words.map((_, i) => i), null], specialTokensMask: [1, ...ids.map(() => 0), 1] };
  },
  encodeText(text: string, opts?: { addSpecialTokens?: boolean }) {
    const e = this.encodeWords(text.split(/\s+/).filter(Boolean), opts);
    return { ...e, wordIds: e.wordIds.map(() => null) };
  },
  tokenToId: (t: string) => (t === '[MASK]' ? MASK : wordId(t)),
  idToToken: (id: number) => `t${id}`,
};

describe('plain text through a tokenizer (the corpus reader of src/data/examples.ts)', () => {
  const text = ['the cat sat on the mat', '', 'a much longer line that the sequence limit of eight tokens will cut short', 'short one'].join('\n') + '\n';

  it('trains the MLM head on a .txt file with masks from the tokenizer, and eval counts the masked tokens', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c.txt');
    fs.writeFileSync(file, text);
    const warnings: string[] = [];
    const corpus = { tokenizer: stubTokenizer, labels: [], maxLength: 8, onWarning: (w: string) => warnings.push(w) };
    const s = await train({ ...base(file, path.join(dir, 'run')), mlm: undefined, corpus, eval: file, steps: 2, batchSize: 2 });
    expect(s.steps).toBe(2);
    expect(warnings.join('\n')).toMatch(/truncated/);
    // 6 + 6 + 2 maskable words (the long line cut to 8 tokens): 0.9, 0.9 and 0.3 expected, at least one each: 3 to 5.
    expect(s.lastEval?.heads.lm.count).toBeGreaterThanOrEqual(3);
    expect(s.lastEval?.heads.lm.count).toBeLessThanOrEqual(5);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run', 'run.json'), 'utf8')).corpus.tokenizer).toBe('stub.json');
  });

  it('text holds no labels for the other heads', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c.txt');
    fs.writeFileSync(file, text);
    const run = train({ ...base(file, path.join(dir, 'run')), losses: [{ head: 'pos' }, { head: 'lm', kind: 'mlm' }], corpus: { tokenizer: stubTokenizer, labels: [] } });
    await expect(run).rejects.toThrow(/head 'pos' needs labels from .*c\.txt: add --label pos=COLUMN/);
  });
});

describe('which heads are MLM heads', () => {
  const heads = [{ head: 'pos', output: 'pos_logits' }, { head: 'mlm', output: 'mlm_logits' }, { head: 'lm', output: 'lm_logits' }];
  it('kind mlm, or no kind on an mlm_logits output or a head the metadata calls mlm', () => {
    expect(mlmHeads([{}, {}, {}], heads)).toEqual(['mlm']);
    expect(mlmHeads([{}, { kind: 'ce' }, { kind: 'mlm' }], heads)).toEqual(['lm']);
    const model = loadModel(MODEL);
    model.proto.metadata_props = [{ key: 'grl-onnx.heads', value: JSON.stringify([{ name: 'lm', output: 'lm_logits', kind: 'mlm', from: 'x', classes: 128 }]) }];
    expect(mlmHeads([{}, {}, {}], heads, model)).toEqual(['mlm', 'lm']);
  });
});

function captureIO() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

describe('grl-onnx train --loss mlm', () => {
  /** The decoder with its `lm_logits` output renamed `mlm_logits`: an MLM head by the naming convention. */
  function mlmModel(dir: string): string {
    const m = loadModel(MODEL);
    const g = m.proto.graph!;
    for (const n of g.node ?? []) n.output = (n.output ?? []).map((o) => (o === 'lm_logits' ? 'mlm_logits' : o));
    for (const o of g.output ?? []) if (o.name === 'lm_logits') o.name = 'mlm_logits';
    const file = path.join(dir, 'mlm-model.onnx');
    saveModel(m, file);
    return file;
  }
  const args = (dir: string, model: string, data: string, ...more: string[]) => ['train', model, '--data', data, '--lr', '1e-3', '--steps', '2', '--batch-size', '4', '--threads', '1', '--out', path.join(dir, 'run'), ...more];

  it('masks an mlm_logits head without being told, and prints loss_mlm / acc_mlm per step', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    writeJsonl(data, sentences(8, 9));
    const { io, out, err } = captureIO();
    const code = await runCli(args(dir, mlmModel(dir), data, '--loss', 'mlm', '--mask-token-id', '127', '--special-ids', '0,1,2'), io);
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const steps = out.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => 'step' in o);
    expect(steps).toHaveLength(2);
    for (const st of steps) {
      expect(Number.isFinite(st.loss_mlm)).toBe(true);
      expect(st.acc_mlm).toBeGreaterThanOrEqual(0);
    }
  });

  it('an mlm head gets loss and accuracy at eval, no per-class metrics (its classes are the vocabulary)', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    writeJsonl(data, sentences(8, 9));
    const { io, out, err } = captureIO();
    const code = await runCli(args(dir, mlmModel(dir), data, '--eval', data, '--loss', 'mlm', '--mask-token-id', '127', '--special-ids', '0,1,2'), io);
    expect([code, err.join('')]).toEqual([0, '']);
    const ev = out.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.eval).pop().eval;
    expect(Object.keys(ev.heads.mlm).sort()).toEqual(['accuracy', 'count', 'loss']);
  });

  it.each([
    ['without a mask token id', ['--loss', 'lm:mlm'], /MLM head 'lm': masking needs the mask token id: give --tokenizer or --mask-token-id\n$/],
    ['with mlm:ce and no labels in the data', ['--loss', 'mlm:ce'], /d\.jsonl:1: missing label key 'mlm'\n$/],
    ['with a bad special id', ['--loss', 'lm:mlm', '--mask-token-id', '127', '--special-ids', '0,x'], /--special-ids: 'x' is not a token id/],
    ['with a bad kind', ['--loss', 'lm:0.5:foo'], /--loss lm:0\.5:foo: kind must be ce, mse or mlm\n$/],
  ])('fails with one line %s', async (_what, more, re) => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    writeJsonl(data, sentences(4, 9));
    const model = more.includes('mlm:ce') ? mlmModel(dir) : MODEL;
    const { io, err } = captureIO();
    const code = await runCli(args(dir, model, data, ...more), io);
    expect(code).not.toBe(0);
    expect(err.join('')).toMatch(re);
    expect(err.join('').trim().split('\n')).toHaveLength(1);
  });
});

describe('on a BertModel encoder with a `heads add --mlm` head', () => {
  it('treats it as MLM without a kind, trains it from text, and resumes exactly', async () => {
    const dir = tmp();
    const encoder = loadModel(path.join(REPO_ROOT, 'test', 'fixtures', 'encoders', 'bert-mini.onnx'));
    const file = path.join(dir, 'mlm.onnx');
    saveModel(addHeads(encoder, [{ name: 'mlm', kind: 'mlm' }], { seed: 1 }).model, file);
    const text = path.join(dir, 'c.txt');
    fs.writeFileSync(text, Array.from({ length: 12 }, (_, i) => `line ${i} of the little corpus with words ${i % 5} and more`).join('\n'));
    const opts = (out: string): TrainerOptions => ({ model: file, data: text, eval: text, out, threads: 1, losses: [{ head: 'mlm' }], corpus: { tokenizer: stubTokenizer, labels: [] }, optimizer: 'adamw', lr: 1e-3, batchSize: 4, seed: 2, steps: 4 });
    const straight = await train(opts(path.join(dir, 'straight')));
    expect(straight.lastEval?.heads.mlm.count).toBeGreaterThanOrEqual(12);
    let n = 0;
    await train(opts(path.join(dir, 'split')), { onStep: () => n++, shouldStop: () => n >= 2 });
    await train({ ...opts(path.join(dir, 'split')), resume: path.join(dir, 'split') });
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'split', 'model.onnx'));
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
  });
});
