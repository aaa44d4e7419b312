// The shipped pretrained encoder (models/pretrained/, made by scripts/pretrain-encoder.sh): its
// tokenizer is bert-base-uncased's WordPiece cut down, the two models have the documented
// inputs and outputs and the same trunk, the MLM head beats the most-frequent-token baseline on
// held-out fortunes, and one MLM training step runs on it through the tokenizer.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io';
import { dimsOf, tensorToFloat32 } from '../../src/onnx/tensor';
import { loadTokenizer } from '../../src/tokenize/tokenizer';
import { Masker, EVAL_STREAM } from '../../src/data/masking';
import { IGNORE_INDEX, makeBatch } from '../../src/data/jsonl';
import { train } from '../../src/train/trainer';
import { REPO_ROOT } from '../fixtures/reference';

const DIR = path.join(REPO_ROOT, 'models', 'pretrained');
const ENCODER = path.join(DIR, 'encoder.onnx');
const MLM = path.join(DIR, 'encoder-mlm.onnx');
const TOKENIZER = path.join(DIR, 'tokenizer.json');
const tok = loadTokenizer(TOKENIZER);
const V = tok.vocabSize;
const D = 128;

const dims = (m: ReturnType<typeof loadModel>, io: 'input' | 'output') =>
  (m.proto.graph?.[io] ?? []).map((v) => `${v.name} ${(v.type?.tensor_type?.shape?.dim ?? []).map((d) => d.dim_param || String(d.dim_value)).join('×')}`);

/** Encode lines as a padded batch with all three BERT inputs. */
function batchOf(lines: string[]) {
  const examples = lines.map((l, i) => ({ line: i + 1, length: 0, inputs: { input_ids: Int32Array.from(tok.encodeText(l).ids) }, labels: {} }));
  for (const e of examples) e.length = e.inputs.input_ids.length;
  return examples;
}
const INPUTS = { inputs: ['input_ids', 'attention_mask', 'token_type_ids'], optionalInputs: { attention_mask: 1, token_type_ids: 0 }, labels: [] };
const SPEC = { ...INPUTS, labels: [{ key: 'mlm', tokenLevel: true }] };

function feeds(batch: ReturnType<typeof makeBatch>): Record<string, ort.Tensor> {
  return Object.fromEntries(SPEC.inputs.map((n) => [n, new ort.Tensor('int64', batch.inputs[n], [batch.size, batch.seqLen])]));
}

describe('models/pretrained/tokenizer.json', () => {
  it('has the five specials first, only bert-base-uncased pieces, and their pieces for words it kept', () => {
    expect(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => tok.tokenToId(t))).toEqual([0, 1, 2, 3, 4]);
    expect(tok.maskTokenId).toBe(4);
    expect([...tok.specialIds].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(V).toBeGreaterThan(5000);
    expect(V).toBeLessThan(15000);
    const full = loadTokenizer(path.join(REPO_ROOT, 'models', 'bert-base-uncased-tokenizer.json'));
    for (let id = 0; id < V; id++) expect(full.tokenToId(tok.idToToken(id)!)).toBeDefined();
    for (const text of ['In the beginning God created the heaven and the earth.', 'It is easy to get burned, and having written, he moved on.']) {
      const e = tok.encodeText(text);
      expect(e.ids[0]).toBe(2);
      expect(e.ids[e.ids.length - 1]).toBe(3);
      expect(e.ids.map((id) => tok.idToToken(id))).toEqual(full.encodeText(text).ids.map((id) => full.idToToken(id)));
    }
    // A rare word falls apart into smaller kept pieces (the cut keeps every ASCII character), never [UNK].
    expect(tok.encodeText('cursor blinks').ids.map((id) => tok.idToToken(id))).toEqual(['[CLS]', 'cu', '##rs', '##or', 'b', '##li', '##nk', '##s', '[SEP]']);
  });
});

describe('models/pretrained/encoder.onnx and encoder-mlm.onnx', () => {
  it('have the documented inputs and outputs, and together fit the repo budget', () => {
    const enc = loadModel(ENCODER);
    const mlm = loadModel(MLM);
    const inputs = ['input_ids batch×sequence', 'attention_mask batch×sequence', 'token_type_ids batch×sequence'];
    expect(dims(enc, 'input')).toEqual(inputs);
    expect(dims(mlm, 'input')).toEqual(inputs);
    expect(dims(enc, 'output')).toEqual([`last_hidden_state batch×sequence×${D}`]);
    expect(dims(mlm, 'output')).toEqual([`last_hidden_state batch×sequence×${D}`, `mlm_logits batch×sequence×${V}`]);
    const heads = JSON.parse(mlm.proto.metadata_props?.find((p) => p.key === 'grl-onnx.heads')?.value ?? '[]');
    expect(heads).toEqual([expect.objectContaining({ name: 'mlm', output: 'mlm_logits', kind: 'mlm', classes: V, tied: true })]);
    const table = enc.proto.graph?.initializer?.find((t) => t.name === 'embeddings.word_embeddings.weight');
    expect(table && dimsOf(table)).toEqual([V, D]);
    const bytes = [ENCODER, MLM, TOKENIZER].reduce((n, f) => n + fs.statSync(f).size, 0);
    expect(bytes).toBeLessThan(25e6);
  });

  it('share the trunk: the same last_hidden_state, bit for bit, and the same trained weights', async () => {
    const batch = makeBatch(batchOf(['It is easy to get burned.', 'They exercise precautions to avoid contamination by last year\'s fashions.']), INPUTS);
    const a = await ort.InferenceSession.create(ENCODER, { intraOpNumThreads: 1 });
    const b = await ort.InferenceSession.create(MLM, { intraOpNumThreads: 1 });
    const ha = (await a.run(feeds(batch))).last_hidden_state;
    const outB = await b.run(feeds(batch));
    expect(ha.dims).toEqual([2, batch.seqLen, D]);
    expect(Buffer.from((ha.data as Float32Array).buffer).equals(Buffer.from((outB.last_hidden_state.data as Float32Array).buffer))).toBe(true);
    expect(outB.mlm_logits.dims).toEqual([2, batch.seqLen, V]);
    const w = (f: string) => tensorToFloat32(loadModel(f).proto.graph!.initializer!.find((t) => t.name === 'embeddings.word_embeddings.weight')!);
    expect(Buffer.from(w(ENCODER).buffer).equals(Buffer.from(w(MLM).buffer))).toBe(true);
  });

  it('predicts masked held-out tokens far better than always guessing the most frequent one', async () => {
    const lines = fs.readFileSync(path.join(REPO_ROOT, 'data', 'test.jsonl'), 'utf8').trim().split('\n').slice(0, 300).map((l) => JSON.parse(l).text as string);
    const masker = new Masker({ maskTokenId: 4, vocabSize: V, specialIds: tok.specialIds, padTokenId: 0, seed: 1 });
    const examples = batchOf(lines).map((e, i) => masker.maskExample(e, EVAL_STREAM, i, 'input_ids', ['mlm']));
    const session = await ort.InferenceSession.create(MLM, { intraOpNumThreads: 1 });
    let hits = 0;
    let count = 0;
    const freq = new Map<number, number>();
    for (let s = 0; s < examples.length; s += 50) {
      const batch = makeBatch(examples.slice(s, s + 50), SPEC);
      const logits = (await session.run(feeds(batch))).mlm_logits.data as Float32Array;
      const labels = batch.labels.mlm as BigInt64Array;
      for (let p = 0; p < labels.length; p++) {
        const y = Number(labels[p]);
        if (y === IGNORE_INDEX) continue;
        let arg = 0;
        for (let k = 1; k < V; k++) if (logits[p * V + k] > logits[p * V + arg]) arg = k;
        hits += arg === y ? 1 : 0;
        freq.set(y, (freq.get(y) ?? 0) + 1);
        count++;
      }
    }
    // The most frequent masked token of these very sentences: a stronger baseline than the training unigram's.
    const oracleMajority = Math.max(...freq.values()) / count;
    expect(count).toBeGreaterThan(500);
    expect(hits / count).toBeGreaterThan(2 * oracleMajority);
  });

  it('trains: one MLM step on plain text through its tokenizer', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-pretrained-'));
    const text = path.join(dir, 'few.txt');
    fs.writeFileSync(text, 'A journey of a thousand miles begins with a single step.\nThe early bird gets the worm.\n');
    const s = await train({ model: MLM, data: text, corpus: { tokenizer: TOKENIZER, labels: [] }, losses: [{ head: 'mlm' }], lr: 1e-3, steps: 1, batchSize: 2, seed: 3, threads: 1, out: path.join(dir, 'run') });
    expect(s.steps).toBe(1);
    expect(Number.isFinite(s.lastStep!.losses.mlm)).toBe(true);
    expect(s.lastStep!.losses.mlm).toBeGreaterThan(0);
    const w = (f: string) => tensorToFloat32(loadModel(f).proto.graph!.initializer!.find((t) => t.name === 'heads.mlm.bias')!);
    expect(Buffer.from(w(s.model).buffer).equals(Buffer.from(w(MLM).buffer))).toBe(false);
  });
});
