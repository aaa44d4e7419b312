// End to end: a BIO entity head added to the shipped tiny tagger, trained by
// `grl-onnx train`; the eval line's span and per-class scores must equal an
// independent recomputation from the exported model.onnx run in onnxruntime,
// with this file's own chunker (conlleval's rules written as begin/inside tests).
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { cli } from '../helpers/cli';
import { useTempDir } from '../helpers/tmpdir';

const ROOT = path.join(__dirname, '..', '..');
const TYPES = ['CARDINAL', 'ORDINAL', 'DATE', 'TIME', 'DURATION', 'QUANTITY'];
const NAMES = ['O', ...TYPES.flatMap((t) => [`B-${t}`, `I-${t}`])];
const PUNCT = 12; // UPOS id of PUNCT in data/labels.json

/**
 * data/*.jsonl's IO entity ids (0 = O, k = TYPES[k-1]) as BIO ids, with punctuation
 * labelled -100: ignored positions inside sentences, as non-first subwords are.
 */
function bioJsonl(file: string, n: number): string {
  const lines = fs.readFileSync(path.join(ROOT, 'data', file), 'utf8').trim().split('\n').slice(0, n);
  return `${lines.map((l) => {
    const r = JSON.parse(l) as { input_ids: number[]; attention_mask: number[]; token_type_ids: number[]; ner: number[]; pos: number[] };
    const bio = r.ner.map((k, i) => (k === 0 ? 0 : i > 0 && r.ner[i - 1] === k ? 2 * k : 2 * k - 1));
    return JSON.stringify({ input_ids: r.input_ids, attention_mask: r.attention_mask, token_type_ids: r.token_type_ids, nerbio: bio.map((b, i) => (r.pos[i] === PUNCT ? -100 : b)) });
  }).join('\n')}\n`;
}

/** Chunks as `type:start-end`: a chunk begins at B/S, or at I/E unless it continues a same-type B/I; it ends before O, a begin, or after E/S. */
function referenceChunks(tags: string[]): string[] {
  const out: string[] = [];
  let open: { type: string; start: number } | undefined;
  const close = (end: number) => {
    if (open) out.push(`${open.type}:${open.start}-${end}`);
    open = undefined;
  };
  tags.forEach((t, i) => {
    if (t === 'O') return close(i - 1);
    const [p, type] = [t[0], t.slice(2)];
    const prev = i > 0 ? tags[i - 1] : 'O';
    const continues = (p === 'I' || p === 'E') && open?.type === type && (prev[0] === 'B' || prev[0] === 'I');
    if (!continues) {
      close(i - 1);
      open = { type, start: i };
    }
    if (p === 'E' || p === 'S') close(i);
  });
  close(tags.length - 1);
  return out;
}

describe('train: span F1 and per-class scores of a BIO head, against the exported model', () => {
  const tmp = useTempDir('grl-evalm-');

  it('the last eval line equals a recomputation from model.onnx in onnxruntime', async () => {
    const labels = tmp.write('labels.txt', `${NAMES.join('\n')}\n`);
    const train = tmp.write('train.jsonl', bioJsonl('train.jsonl', 1200));
    const dev = tmp.write('dev.jsonl', bioJsonl('dev.jsonl', 300));
    const model = path.join(tmp.dir(), 'm.onnx');
    const added = await cli(['heads', 'add', path.join(ROOT, 'models', 'tiny-tagger.onnx'), '--head', `nerbio:${NAMES.length}:token`,
      '--from', '/encoder/layer.1/ffn_norm/LayerNormalization_output_0', '--labels', `nerbio=${labels}`, '-o', model]);
    expect(added.code).toBe(0);
    const run = path.join(tmp.dir(), 'run');
    const res = await cli(['train', model, '--data', train, '--eval', dev, '--loss', 'nerbio', '--trainable', '/nerbio/', '--lr', '1e-2',
      '--steps', '40', '--batch-size', '32', '--eval-every', '20', '--seed', '3', '--threads', '1', '--json', '--out', run]);
    expect([res.code, res.stderr]).toEqual([0, '']);
    const evals = res.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.eval).map((o) => o.eval);
    expect(evals.map((e) => e.step)).toEqual([20, 40]);
    // Every eval line has the summary scores; only the run's last one has the per-class table.
    for (const e of evals) for (const k of ['macro_f1', 'span_precision', 'span_recall', 'span_f1']) expect(typeof e.heads.nerbio[k]).toBe('number');
    expect(evals[0].heads.nerbio.per_class).toBeUndefined();
    const m = evals[1].heads.nerbio;
    const fileEval = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.eval).pop().eval;
    expect(fileEval).toEqual(evals[1]);

    // Recompute: one example at a time (no padding), argmax of nerbio_logits, ignored positions dropped.
    const session = await ort.InferenceSession.create(path.join(run, 'model.onnx'), { intraOpNumThreads: 1 });
    let gold = 0;
    let predicted = 0;
    let correct = 0;
    const support = new Array(NAMES.length).fill(0);
    const predCount = new Array(NAMES.length).fill(0);
    let hits = 0;
    for (const line of fs.readFileSync(dev, 'utf8').trim().split('\n')) {
      const r = JSON.parse(line);
      const T = r.input_ids.length;
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) feeds[name] = new ort.Tensor('int64', BigInt64Array.from(r[name], BigInt), [1, T]);
      const logits = (await session.run(feeds)).nerbio_logits.data as Float32Array;
      const g: string[] = [];
      const p: string[] = [];
      for (let t = 0; t < T; t++) {
        if (r.nerbio[t] === -100) continue;
        const row = Array.from(logits.subarray(t * NAMES.length, (t + 1) * NAMES.length));
        const c = row.indexOf(Math.max(...row));
        support[r.nerbio[t]]++;
        predCount[c]++;
        if (c === r.nerbio[t]) hits++;
        g.push(NAMES[r.nerbio[t]]);
        p.push(NAMES[c]);
      }
      const gc = referenceChunks(g);
      const pc = referenceChunks(p);
      gold += gc.length;
      predicted += pc.length;
      correct += pc.filter((c) => gc.includes(c)).length;
    }
    await session.release();
    // A head that learned something: spans predicted and some right (else F1 = 0 would match trivially).
    expect(predicted).toBeGreaterThan(20);
    expect(correct).toBeGreaterThan(10);
    const precision = correct / predicted;
    const recall = correct / gold;
    expect(m.span_precision).toBeCloseTo(precision, 12);
    expect(m.span_recall).toBeCloseTo(recall, 12);
    expect(m.span_f1).toBeCloseTo((2 * precision * recall) / (precision + recall), 12);
    expect(m.span_types.reduce((a: number, t: { support: number }) => a + t.support, 0)).toBe(gold);
    expect(m.per_class.map((c: { label: string }) => c.label)).toEqual(NAMES);
    expect(m.per_class.map((c: { support: number }) => c.support)).toEqual(support);
    expect(m.per_class.map((c: { predicted: number }) => c.predicted)).toEqual(predCount);
    expect(m.accuracy).toBeCloseTo(hits / m.count, 6);
    expect(m.confusion.map((row: number[]) => row.reduce((a, b) => a + b, 0))).toEqual(support);
  }, 120_000);
});
