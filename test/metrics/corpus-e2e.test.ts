// Label names from a corpus: a head without names in the model, trained or probed
// on a CoNLL file with BIO entity tags, is scored with the training vocabulary's
// names, so entity spans are reported.
import * as fs from 'fs';
import * as path from 'path';
import { cli } from '../helpers/cli';
import { useTempDir } from '../helpers/tmpdir';

const ROOT = path.join(__dirname, '..', '..');
const BPE = path.join(ROOT, 'test/fixtures/tokenizers/bpe-tokenizer.json');
const CONLL = path.join(ROOT, 'test/fixtures/corpora/sample.conll');
// sample.conll's entity column (3), sorted as the built vocabulary is; the ner head has 7 classes.
const VOCAB = ['B-LOC', 'B-MISC', 'B-ORG', 'B-PER', 'I-PER', 'O'];
// Its gold chunks: EU (ORG), German (MISC), British (MISC), Peter Blackburn (PER), BRUSSELS (LOC).
const GOLD_CHUNKS = { LOC: 1, MISC: 2, ORG: 1, PER: 1 };

describe('corpus label names for eval metrics', () => {
  const tmp = useTempDir('grl-evalm-corpus-');

  it('train: per-class rows carry the vocabulary names, spans are counted over words', async () => {
    const dev = tmp.write('dev.conll', fs.readFileSync(CONLL, 'utf8'));
    const t = await cli(['train', path.join(ROOT, 'models/tiny-tagger-init.onnx'), '--data', CONLL, '--eval', dev, '--tokenizer', BPE, '--label', 'ner=3',
      '--loss', 'ner', '--lr', '1e-3', '--steps', '2', '--batch-size', '2', '--threads', '1', '--out', path.join(tmp.dir(), 'run'), '--json']);
    expect([t.code, t.stderr]).toEqual([0, '']);
    const e = t.stdout.split('\n').filter((l) => l.startsWith('{"eval"')).map((l) => JSON.parse(l).eval).pop();
    const m = e.heads.ner;
    // The 7th class has no name in the vocabulary: its id.
    expect(m.per_class.map((c: { label: string }) => c.label)).toEqual([...VOCAB, '6']);
    expect(m.per_class.map((c: { support: number }) => c.support)).toEqual([1, 2, 1, 1, 1, 7, 0]);
    expect(Object.fromEntries(m.span_types.map((r: { type: string; support: number }) => [r.type, r.support]))).toMatchObject(GOLD_CHUNKS);
    expect(m.span_types.reduce((a: number, r: { support: number }) => a + r.support, 0)).toBe(5);
    for (const k of ['span_precision', 'span_recall', 'span_f1', 'macro_f1']) expect(m[k]).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('probe: entity spans beside accuracy and macro-F1', async () => {
    const dev = tmp.write('dev.conll', fs.readFileSync(CONLL, 'utf8'));
    const args = ['probe', path.join(ROOT, 'models/tiny-tagger.onnx'), '--data', CONLL, '--eval', dev, '--tokenizer', BPE, '--label', 'ner=3', '--epochs', '2', '--threads', '1'];
    const j = await cli([...args, '--json']);
    expect([j.code, j.stderr]).toEqual([0, '']);
    const r = JSON.parse(j.stdout);
    expect(r.rows).toBe(13); // one row per word (first subword): 9 + 2 + 2 words, -DOCSTART- lines dropped
    expect(r.spans.gold).toBe(5);
    expect(r.spans.types.map((t: { type: string; support: number }) => [t.type, t.support])).toEqual(Object.entries(GOLD_CHUNKS));
    expect(r.spans.correct).toBeLessThanOrEqual(Math.min(r.spans.gold, r.spans.predicted));
    const h = await cli(args);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/\n {2}accuracy {2}\S+% {3}\(train \S+%, macro-F1 \S+%, non-majority rows \S+%\)\n {2}entity spans \(seqeval\/conlleval\): precision \S+% recall \S+% F1 \S+% \(5 gold, \d+ predicted, \d+ correct\)\n {2}majority/);
  }, 60_000);
});
