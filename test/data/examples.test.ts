// Corpus files straight into train / probe: loadExamples prepares them in memory
// with the model's sequence limit, eval data uses the training vocabulary, and the
// model is checked against the tokenizer and the label vocabulary before anything runs.
import * as fs from 'fs';
import * as path from 'path';
import { loadExamples, corpusForEval, corpusForModel, CorpusOptions } from '../../src/data/examples';
import { withLabelNames } from '../../src/heads/labels';
import { DataSpec } from '../../src/data/jsonl';
import { loadModel } from '../../src/onnx/io';
import { resolveHead } from '../../src/patch/heads';
import { taggerSpec } from '../../src/experiment/models';
import { runCli, CliIO } from '../../src/cli/main';
import { useTempDir } from '../helpers/tmpdir';

const ROOT = path.join(__dirname, '../..');
const BPE = path.join(ROOT, 'test/fixtures/tokenizers/bpe-tokenizer.json');
const BERT = path.join(ROOT, 'models/bert-base-uncased-tokenizer.json');
const TAGGER = path.join(ROOT, 'models/tiny-tagger.onnx'); // vocab 6,966, 64 positions, pos 17 classes
const C = (name: string) => path.join(ROOT, 'test/fixtures/corpora', name);

const tmp = useTempDir('grl-ex-');
const write = tmp.write;
const row = (id: number, form: string, upos: string) => [String(id), form, '_', upos, '_', '_', '0', 'dep', '_', '_'].join('\t');

const tagger = loadModel(TAGGER);
const spec = taggerSpec(tagger, [resolveHead(tagger, 'pos')]);

test('a CoNLL-U corpus through the BPE tokenizer: ids, first-subword labels, the tokenizer\'s own ids', () => {
  const ex = loadExamples(C('sample.conllu'), spec, { tokenizer: BPE, labels: ['pos=upos'] });
  expect(ex.map((e) => e.line)).toEqual([5, 16, 27]);
  // "Cats sleep": <s> C a t s Ġs l e e p </s>; "Ġs" is a merge (266), the rest bytes (4 + byte).
  expect(Array.from(ex[2].inputs.input_ids)).toEqual([0, 4 + 67, 263, 4 + 115, 266, 4 + 108, 4 + 101, 4 + 101, 4 + 112, 2]);
  // sorted UPOS: ADP CCONJ DET NOUN PRON PROPN PUNCT VERB → NOUN 3, VERB 7.
  expect(Array.from(ex[2].labels.pos as Float64Array)).toEqual([-100, 3, -100, -100, 7, -100, -100, -100, -100, -100]);
  expect(Object.keys(ex[2].inputs)).toEqual(['input_ids']); // attention_mask etc. are filled by makeBatch
});

test('the max length defaults to the model\'s position table (64 rows), with one warning line', () => {
  const words = Array.from({ length: 70 }, (_, i) => row(i + 1, 'word', i % 2 ? 'NOUN' : 'VERB'));
  const long = write('long.conllu', `${words.join('\n')}\n\n${row(1, 'short', 'NOUN')}\n`);
  const warnings: string[] = [];
  const corpus: CorpusOptions = { tokenizer: BPE, labels: ['pos=upos'], onWarning: (w) => warnings.push(w) };
  expect(spec.sequenceLimit?.limit).toBe(64);
  const ex = loadExamples(long, spec, corpus);
  // "short" is five byte tokens (no merge applies) between <s> and </s>.
  expect(ex.map((e) => e.length)).toEqual([64, 7]);
  expect(Array.from(ex[0].inputs.input_ids).slice(-1)).toEqual([2]); // </s> kept
  // "word" is w o r d (4 tokens) at the start, "Ġword" Ġ w o r d (5) after: 4 + 11×5 = 59 of the 62 body tokens → 12 words fit whole, the
  // 13th keeps 3 of its 5 tokens (cut, but its first subword keeps its label), 57 more are dropped: 58 cut.
  expect(warnings).toEqual([`${long}: truncated 1 of 2 sentences to 64 tokens (58 words cut)`]);
  // --max-length below the limit wins; above it, the model's limit does.
  expect(loadExamples(long, spec, { ...corpus, maxLength: 10 })[0].length).toBe(10);
  expect(loadExamples(long, spec, { ...corpus, maxLength: 500 })[0].length).toBe(64);
});

test('eval data reads with the training vocabulary: unknown labels are -100 and counted', () => {
  const train = write('train.conllu', `${row(1, 'cat', 'NOUN')}\n${row(2, 'sat', 'VERB')}\n`);
  const dev = write('dev.conllu', `${row(1, 'cat', 'NOUN')}\n${row(2, 'quickly', 'ADV')}\n`);
  const warnings: string[] = [];
  const corpus: CorpusOptions = { tokenizer: BPE, labels: ['pos=upos'], onWarning: (w) => warnings.push(w) };
  const ex = loadExamples(dev, spec, corpusForEval(corpus, train));
  expect(Array.from(ex[0].labels.pos as Float64Array).filter((l) => l !== -100)).toEqual([0]); // NOUN is 0 of [NOUN, VERB]
  expect(warnings).toEqual([`${dev}: 1 labels not in the training vocabulary are ignored (-100): pos 'ADV' ×1`]);
  expect(() => loadExamples(dev, spec, { ...corpusForEval(corpus, train), strictLabels: true })).toThrow(`${dev}:2: label 'pos' = 'ADV' is not in the training label vocabulary (--strict-labels)`);
});

test('a head with label names in the model (heads add --labels) reads labels with those names, eval too', () => {
  const names = JSON.parse(fs.readFileSync(path.join(ROOT, 'data/labels.json'), 'utf8')).pos as string[];
  expect(names.slice(0, 3)).toEqual(['ADJ', 'ADP', 'ADV']);
  const labelled = withLabelNames(tagger, 'pos', names);
  const warnings: string[] = [];
  const corpus = corpusForModel({ tokenizer: BPE, labels: ['pos=upos'], onWarning: (w) => warnings.push(w) }, labelled);
  expect(corpus.modelLabels).toEqual({ pos: names });
  const first = (e: { labels: Record<string, unknown> }) => Array.from(e.labels.pos as Float64Array).filter((l) => l !== -100);
  const ex = loadExamples(C('sample.conllu'), spec, corpus);
  // Cats/NOUN sleep/VERB: NOUN and VERB are 7 and 15 in the model's list (sorted corpus order would give 3 and 7).
  expect(first(ex[2])).toEqual([names.indexOf('NOUN'), names.indexOf('VERB')]);
  expect(first(ex[2])).toEqual([7, 15]);
  const train = write('train.conllu', `${row(1, 'cat', 'NOUN')}\n${row(2, 'sat', 'VERB')}\n`);
  const dev = write('dev.conllu', `${row(1, 'cat', 'ADV')}\n${row(2, 'sat', 'NOPE')}\n`);
  expect(first(loadExamples(dev, spec, corpusForEval(corpus, train))[0])).toEqual([2]); // ADV is known to the model
  expect(warnings).toEqual([`${dev}: 1 labels not in the training vocabulary are ignored (-100): pos 'NOPE' ×1`]);
  expect(corpusForModel({ tokenizer: BPE, labels: ['pos=upos'] }, tagger).modelLabels).toBeUndefined();
});

test('ids JSONL still loads when a tokenizer is given', () => {
  const ids = write('ids.jsonl', '{"input_ids": [5, 6, 7], "pos": [1, 2, -100]}\n');
  const ex = loadExamples(ids, spec, { tokenizer: BPE, labels: ['pos=upos'] });
  expect(Array.from(ex[0].inputs.input_ids)).toEqual([5, 6, 7]);
});

test('checked against the model up front', () => {
  expect(() => loadExamples(C('sample.conllu'), spec, { tokenizer: BERT, labels: ['pos=upos'] }))
    .toThrow(`${BERT}: the tokenizer has 30522 ids but the model's 'input_ids' embedding table has 6966 rows`);
  expect(() => loadExamples(C('sample.conllu'), spec, { tokenizer: BPE, labels: ['ner=upos'] })).toThrow(`head 'pos' needs labels from ${C('sample.conllu')}: add --label pos=COLUMN`);
  const small: DataSpec = { ...spec, labels: [{ key: 'pos', tokenLevel: true, numClasses: 4, kind: 'ce' }] };
  expect(() => loadExamples(C('sample.conllu'), small, { tokenizer: BPE, labels: ['pos=upos'] })).toThrow(`${C('sample.conllu')} has 8 'pos' labels but head 'pos' has 4 classes`);
  const seq: DataSpec = { ...spec, labels: [{ key: 'pos', tokenLevel: false, numClasses: 4, kind: 'ce' }] };
  expect(() => loadExamples(C('sample.conllu'), seq, { tokenizer: BPE, labels: ['pos=upos'] })).toThrow(`--label pos=upos: head 'pos' is sequence-level but ${C('sample.conllu')} gives word labels`);
  const topic: DataSpec = { inputs: ['input_ids'], labels: [{ key: 'topic', tokenLevel: false, numClasses: 2, kind: 'ce' }], idLimits: { input_ids: 300 } };
  expect(loadExamples(C('sample.conllu'), topic, { tokenizer: BPE, labels: ['topic=label'] }).map((e) => e.labels.topic)).toEqual([0, 1, -100]);
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (c) => (out += c.toString()) }, stderr: { write: (s) => (err += s) } };
  const code = await runCli(args, io);
  return { code, stdout: out, stderr: err };
}

test('grl-onnx train and probe read a corpus with --tokenizer', async () => {
  const dev = write('dev.conllu', fs.readFileSync(C('sample.conllu'), 'utf8'));
  const out = path.join(tmp.dir(), 'run');
  const t = await cli(['train', path.join(ROOT, 'models/tiny-tagger-init.onnx'), '--data', C('sample.conllu'), '--eval', dev, '--tokenizer', BPE, '--label', 'pos=upos', '--loss', 'pos', '--lr', '1e-3', '--steps', '2', '--batch-size', '2', '--out', out, '--json']);
  expect(t.stderr).toBe('');
  expect(t.code).toBe(0);
  const evalLine = t.stdout.split('\n').filter((l) => l.startsWith('{"eval"')).map((l) => JSON.parse(l))[0];
  expect(evalLine.eval.heads.pos.count).toBe(15); // one label per word: 6 + 7 + 2 words
  const p = await cli(['probe', TAGGER, '--data', C('sample.conllu'), '--eval', dev, '--tokenizer', BPE, '--label', 'pos=upos', '--epochs', '1', '--json']);
  expect(p.stderr).toBe('');
  expect(p.code).toBe(0);
  const r = JSON.parse(p.stdout);
  expect([r.trainRows, r.rows]).toEqual([15, 15]);
  const bad = await cli(['probe', TAGGER, '--data', C('sample.conllu'), '--eval', dev, '--tokenizer', BPE, '--label', 'pos']);
  expect(bad.stderr).toBe('grl-onnx: --label pos: with --tokenizer give HEAD=COLUMN (e.g. pos=upos)\n');
  const stray = await cli(['train', TAGGER, '--data', C('sample.conllu'), '--label', 'pos=upos', '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '2', '--out', out]);
  expect(stray.stderr).toBe('grl-onnx: --label needs --tokenizer (the data is read as a corpus only with a tokenizer)\n');
});
