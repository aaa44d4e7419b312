// The erasure experiment (`grl-onnx experiment`, default kind) end to end with
// --quick budgets on a small BertModel-layout encoder with an MLM head: every
// method runs, the report's numbers are recomputed here where they can be
// (majority, MLM accuracy through onnxruntime, λ schedule, INLP's rank for the
// random control), and config mistakes get one line.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { runCli } from '../src/cli/main';
import { loadModel, saveModel } from '../src/onnx/io';
import { addHeads } from '../src/heads/add';
import { loadTokenizer } from '../src/tokenize/tokenizer';
import { loadExamples } from '../src/data/examples';
import { EVAL_STREAM, Masker } from '../src/data/masking';
import { makeBatch } from '../src/data/jsonl';
import { lambdaAt } from '../src/train/schedules';
import { resolveErasureConfig } from '../src/experiment/erasure/config';
import { experimentKind } from '../src/experiment/kind';
import type { ErasureReport } from '../src/experiment/erasure/run';


// Whole experiments run in beforeAll: minutes when the machine is loaded.
jest.setTimeout(600_000);
const ROOT = path.join(__dirname, '..');
const TOKENIZER = path.join(ROOT, 'models/bert-base-uncased-tokenizer.json');
const WORDS = (s: string) => path.join(ROOT, 'data/words', `${s}.jsonl`);

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } } };
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-erasure-test-'));

/** A small BertModel-layout encoder (vocab 30522, d 32) with a fresh MLM head. */
function mlmEncoder(dir: string): string {
  const enc = loadModel(path.join(ROOT, 'models/encoders/bert-encoder.onnx'));
  const file = path.join(dir, 'encoder-mlm.onnx');
  saveModel(addHeads(enc, [{ name: 'mlm', kind: 'mlm' }], { seed: 3 }).model, file);
  return file;
}

function writeConfig(dir: string, model: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'cfg.json');
  fs.writeFileSync(file, JSON.stringify({
    model, tokenizer: TOKENIZER, data: { train: WORDS('train'), dev: WORDS('dev'), test: WORDS('test') },
    ...extra,
  }));
  return file;
}

describe('experiment (erasure) --quick', () => {
  const dir = tmp();
  let report: ErasureReport;
  let stdout = '';
  let model = '';

  beforeAll(async () => {
    model = mlmEncoder(dir);
    const a = io();
    const code = await runCli(['experiment', writeConfig(dir, model), '--quick', '--out', path.join(dir, 'out'), '--threads', '1'], a.io);
    stdout = a.out.join('');
    if (code !== 0) throw new Error(a.err.join(''));
    report = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'report.json'), 'utf8'));
  });

  test('every method ran; LEACE once (closed form), the seeded ones per seed', () => {
    expect(report.kind).toBe('erasure');
    expect(report.runs.map((r) => r.method)).toEqual(['grl', 'inlp', 'leace', 'random', 'random-leace']);
    expect(report.summary.map((s) => s.method)).toEqual(['grl', 'inlp', 'leace', 'random', 'random-leace']);
    expect(report.model.tensor).toBe('last_hidden_state');
    expect(report.model.classes).toEqual({ concept: 17, target: 7 });
  });

  test('random removes as many directions as INLP did with the same seed; LEACE at most classes − 1', () => {
    const rank = (m: string) => report.runs.find((r) => r.method === m)?.rank as number;
    expect(rank('inlp')).toBeGreaterThan(0);
    expect(rank('random')).toBe(rank('inlp'));
    expect(rank('random-leace')).toBe(rank('leace'));
    expect(rank('leace')).toBeGreaterThan(0);
    expect(rank('leace')).toBeLessThanOrEqual(16);
    expect(report.runs.find((r) => r.method === 'grl')?.rank).toBeUndefined();
  });

  test('GRL training followed the dann λ schedule for its steps, with MLM and the adversary both trained', () => {
    const grl = report.runs.find((r) => r.method === 'grl');
    const steps = report.config.grl.steps;
    expect(grl?.curve).toHaveLength(steps);
    grl?.curve?.forEach((c, i) => expect(c.lambda).toBeCloseTo(lambdaAt({ kind: 'dann' }, report.config.grl.lambda, i, steps), 6));
    for (const c of grl?.curve ?? []) {
      expect(c.mlmAccuracy).toBeGreaterThanOrEqual(0);
      expect(c.conceptAccuracy).toBeGreaterThan(0);
    }
  });

  test('the probe majority baseline is the majority of the held-out labels', () => {
    const tok = loadTokenizer(TOKENIZER);
    const m = loadModel(model);
    const spec = { inputs: ['input_ids', 'attention_mask', 'token_type_ids'], optionalInputs: { attention_mask: 1, token_type_ids: 0 }, labels: [{ key: 'pos', tokenLevel: true, numClasses: 17 }] };
    const test = loadExamples(WORDS('test'), spec, { tokenizer: tok, labels: ['pos=pos'], labelsFrom: WORDS('train'), maxLength: 128 }).slice(0, report.config.probe.evalSentences);
    expect(m).toBeDefined();
    const counts = new Array(17).fill(0);
    let n = 0;
    for (const e of test) for (const y of e.labels.pos as Float64Array) if (y >= 0) { counts[y]++; n++; }
    // The probe's majority label comes from the training rows; NOUN is the most frequent tag in both.
    expect(report.baseline.probe.majority.accuracy).toBeCloseTo(counts[report.baseline.probe.majority.label] / n, 10);
    expect(report.model.labelNames.pos[report.baseline.probe.majority.label]).toBe('NOUN');
  });

  test('MLM accuracy is the argmax over mlm_logits at the masked positions, recounted through onnxruntime', async () => {
    const tok = loadTokenizer(TOKENIZER);
    const spec = { inputs: ['input_ids', 'attention_mask', 'token_type_ids'], optionalInputs: { attention_mask: 1, token_type_ids: 0 }, labels: [] };
    const dev = loadExamples(WORDS('dev'), spec, { tokenizer: tok, labels: [], maxLength: 128 }).slice(0, report.config.mlm.evalSentences);
    const masker = new Masker({ maskTokenId: tok.maskTokenId as number, vocabSize: tok.vocabSize, specialIds: tok.specialIds, padTokenId: tok.padTokenId, seed: 0 });
    const masked = dev.map((e, i) => masker.maskExample(e, EVAL_STREAM, i, 'input_ids', ['mlm']));
    const session = await ort.InferenceSession.create(model);
    let right = 0;
    let total = 0;
    for (const e of masked) {
      const b = makeBatch([e], { ...spec, labels: [{ key: 'mlm', tokenLevel: true, numClasses: 30522 }] });
      const feeds: Record<string, ort.Tensor> = {};
      for (const k of ['input_ids', 'attention_mask', 'token_type_ids']) feeds[k] = new ort.Tensor('int64', b.inputs[k], [1, b.seqLen]);
      const logits = (await session.run(feeds)).mlm_logits.data as Float32Array;
      const labels = b.labels.mlm as BigInt64Array;
      for (let t = 0; t < b.seqLen; t++) {
        const y = Number(labels[t]);
        if (y < 0) continue;
        let best = 0;
        for (let v = 1; v < 30522; v++) if (logits[t * 30522 + v] > logits[t * 30522 + best]) best = v;
        total++;
        if (best === y) right++;
      }
    }
    await session.release();
    expect(total).toBeGreaterThan(20);
    expect(report.baseline.mlm.rows).toBe(total);
    expect(report.baseline.mlm.accuracy).toBeCloseTo(right / total, 12);
  });

  test('trainability curves start before any update and end at the last step', () => {
    for (const m of [report.baseline, ...report.runs.map((r) => r.after)]) {
      const c = m.trainability.devAccuracy;
      expect(c[0].step).toBe(0);
      expect(c[c.length - 1].step).toBe(report.config.trainability.steps);
      expect(m.trainability.finalDevAccuracy).toBe(c[c.length - 1].value);
      const l = m.trainability.devLoss;
      expect(l[l.length - 1].step).toBe(report.config.trainability.steps);
      expect(m.trainability.finalDevLoss).toBe(l[l.length - 1].value);
    }
  });

  test('stdout, summary.md and report.html put the methods side by side', () => {
    for (const name of ['GRL (amnesic training, MLM kept)', 'INLP', 'LEACE', 'random directions (INLP rank)']) expect(stdout).toContain(name);
    const md = fs.readFileSync(path.join(dir, 'out', 'summary.md'), 'utf8');
    expect(md).toContain('## Methods side by side');
    expect(md.split('\n').filter((l) => l.startsWith('| ') && /GRL|INLP|LEACE|random|original/.test(l)).length).toBeGreaterThanOrEqual(5);
    expect(md).toContain('--quick');
    const html = fs.readFileSync(path.join(dir, 'out', 'report.html'), 'utf8');
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBe(3);
  });
});

describe('erasure experiment config', () => {
  test('the kind of a config file: erasure by default, tagger by kind or by its keys', () => {
    expect(experimentKind(undefined)).toBe('erasure');
    expect(experimentKind({ kind: 'tagger' })).toBe('tagger');
    expect(experimentKind({ adversary: 'pos' })).toBe('tagger');
    expect(experimentKind({ methods: ['leace'] })).toBe('erasure');
    expect(() => experimentKind({ kind: 'other' }, 'x.json')).toThrow('x.json: unknown experiment kind "other" (expected "erasure" or "tagger")');
  });

  test('methods are checked and put in dependency order; --quick keeps one seed', () => {
    expect(resolveErasureConfig({ methods: ['random', 'inlp'] }, false).methods).toEqual(['inlp', 'random']);
    expect(() => resolveErasureConfig({ methods: ['leace', 'pca'] as never }, false)).toThrow("config: unknown method 'pca' in methods (known: grl, inlp, leace, random, random-leace)");
    expect(() => resolveErasureConfig({ methods: ['random-leace'] }, false)).toThrow("config: random-leace copies the rank of leace: list leace in methods too");
    expect(() => resolveErasureConfig({ methods: ['leace', 'leace'] }, false)).toThrow('config: methods lists a method twice');
    expect(() => resolveErasureConfig({ target: 'pos' }, false)).toThrow("config: concept and target are the same label ('pos')");
    expect(resolveErasureConfig(undefined, true).seeds.train).toEqual([0]);
    expect(resolveErasureConfig({ seeds: { train: [4, 5] } }, true).seeds.train).toEqual([4, 5]);
  });

  test('an encoder without an MLM head gets one line', async () => {
    const dir = tmp();
    const a = io();
    const code = await runCli(['experiment', writeConfig(dir, path.join(ROOT, 'models/encoders/bert-encoder.onnx')), '--quick', '--out', path.join(dir, 'out')], a.io);
    expect(code).not.toBe(0);
    expect(a.err.join('')).toMatch(/bert-encoder\.onnx: the erasure experiment needs an encoder with an MLM head \(an 'mlm_logits' output; add one with grl-onnx heads add --mlm\)\n$/);
    expect(a.err.join('').split('\n').filter(Boolean)).toHaveLength(1);
  });
});
