// Data preparation: corpus → ids JSONL records, label vocabularies, unknown labels,
// truncation counts; and `grl-onnx data prepare` end to end in-process.
import * as fs from 'fs';
import * as path from 'path';
import { loadTokenizer } from '../../src/tokenize/tokenizer';
import { prepareCorpus, preparedJsonl, parseLabelRequest } from '../../src/data/prepare';

import { useTempDir } from '../helpers/tmpdir';
import { cli } from '../helpers/cli';

const ROOT = path.join(__dirname, '../..');
const BERT_FILE = path.join(ROOT, 'models/bert-base-uncased-tokenizer.json');
const tok = loadTokenizer(BERT_FILE);
const C = (name: string) => path.join(ROOT, 'test/fixtures/corpora', name);

const tmp = useTempDir('grl-prep-');
const write = tmp.write;

describe('prepareCorpus', () => {
  test('CoNLL-U: word labels on first subwords, sentence label, sorted vocabulary', () => {
    const p = prepareCorpus(C('sample.conllu'), { tokenizer: tok, labels: ['pos=upos', 'topic=label'].map(parseLabelRequest) });
    expect(p.vocab).toEqual({ pos: ['ADP', 'CCONJ', 'DET', 'NOUN', 'PRON', 'PROPN', 'PUNCT', 'VERB'], topic: ['animals', 'food'] });
    expect(p.sentenceLevel).toEqual({ pos: false, topic: true });
    // il / par ##le / de / le / chat / .
    expect(p.records[0].input_ids).toEqual([101, 6335, 11968, 2571, 2139, 3393, 11834, 1012, 102]);
    expect(p.records[0].labels).toEqual({ pos: [-100, 4, 7, -100, 0, 2, 3, 6, -100], topic: 0 });
    expect(p.records[2].labels.topic).toBe(-100); // no `# label` comment
    expect(p.records.map((r) => r.line)).toEqual([5, 16, 27]);
    expect(p.stats).toMatchObject({ sentences: 3, words: 15, tokens: 22, longest: 9, truncatedSentences: 0 });
    expect(p.warnings).toEqual([]);
  });

  test('sorted order: labels that are all integers (class ids in JSONL) sort by value, so they keep their ids', () => {
    const f = write('ids.jsonl', `${JSON.stringify({ words: ['a', 'b', 'c'], tag: [10, 2, 0], n: [1, 'x', 2] })}\n${JSON.stringify({ words: ['d'], tag: [1], n: [3] })}\n`);
    const p = prepareCorpus(f, { tokenizer: tok, labels: ['tag=tag', 'n=n'].map(parseLabelRequest) });
    // Before: "0", "1", "10", "2" (id 2 for "10"). Mixed labels keep the string order.
    expect(p.vocab).toEqual({ tag: ['0', '1', '2', '10'], n: ['1', '2', '3', 'x'] });
    expect(p.records.map((r) => r.labels.tag)).toEqual([[-100, 3, 2, 0, -100], [-100, 1, -100]]);
  });

  test('first-seen order and --label-all-subwords', () => {
    const p = prepareCorpus(C('sample.conllu'), { tokenizer: tok, labels: [parseLabelRequest('pos=upos')], labelOrder: 'first-seen', labelAllSubwords: true });
    expect(p.vocab.pos).toEqual(['PRON', 'VERB', 'ADP', 'DET', 'NOUN', 'PUNCT', 'PROPN', 'CCONJ']);
    expect(p.records[0].labels.pos).toEqual([-100, 0, 1, 1, 2, 3, 4, 5, -100]);
  });

  test('dev data with the training vocabulary: unknown labels become -100 with one warning line, or an error', () => {
    const dev = write('dev.conll', 'Paris NNP B-NP B-LOC\nis VBZ B-VP O\nnice JJ B-ADJP B-QUAL\n\nRome NNP B-NP B-QUAL\n');
    const labelsFrom = { ner: ['B-LOC', 'O'] };
    const p = prepareCorpus(dev, { tokenizer: tok, labels: [parseLabelRequest('ner=3')], labelsFrom });
    expect(p.vocab).toEqual(labelsFrom);
    expect(p.records.map((r) => r.labels.ner)).toEqual([[-100, 0, 1, -100, -100], [-100, -100, -100]]);
    expect(p.warnings).toEqual([`${dev}: 2 labels not in the training vocabulary are ignored (-100): ner 'B-QUAL' ×2`]);
    expect(() => prepareCorpus(dev, { tokenizer: tok, labels: [parseLabelRequest('ner=3')], labelsFrom, strictLabels: true }))
      .toThrow(`${dev}:3: label 'ner' = 'B-QUAL' is not in the training label vocabulary (--strict-labels)`);
    expect(() => prepareCorpus(dev, { tokenizer: tok, labels: [parseLabelRequest('pos=1')], labelsFrom }))
      .toThrow("--labels-from: no label 'pos' in the training label vocabulary (it has ner)");
  });

  test('truncation: sentences and words cut are counted, [SEP] kept', () => {
    const p = prepareCorpus(C('sample.conll'), { tokenizer: tok, labels: [parseLabelRequest('ner=3')], maxLength: 6 });
    // eu rejects german call to boycott british lamb . → [CLS] eu rejects german call [SEP]
    expect(p.records[0].input_ids).toEqual([101, 7327, 19164, 2446, 2655, 102]);
    // brussels 1996 - 08 - 22 → [CLS] brussels 1996 - 08 [SEP]: the date is cut
    expect(p.records[2].input_ids).toEqual([101, 9371, 2727, 1011, 5511, 102]);
    // ner vocabulary (sorted): B-LOC 0, B-MISC 1, B-ORG 2, B-PER 3, I-PER 4, O 5.
    expect(p.records[2].labels.ner).toEqual([-100, 0, 5, -100, -100, -100]);
    expect(p.stats).toMatchObject({ truncatedSentences: 2, truncatedWords: 6 });
    expect(p.warnings).toEqual([`${C('sample.conll')}: truncated 2 of 3 sentences to 6 tokens (6 words cut)`]);
  });

  test('a label column that is empty everywhere is an error; mixed word/sentence labels are an error', () => {
    expect(() => prepareCorpus(C('sample.conllu'), { tokenizer: tok, labels: [parseLabelRequest('x=misc.Nope')] })).toThrow(`${C('sample.conllu')}: label 'x' has no value in any sentence`);
    const mixed = write('mixed.jsonl', '{"words": ["a"], "t": ["X"]}\n{"words": ["b"], "t": "Y"}\n');
    expect(() => prepareCorpus(mixed, { tokenizer: tok, labels: [parseLabelRequest('t=t')] })).toThrow(`${mixed}:2: label 't' is a sentence label here but word labels earlier`);
  });

  test('plain text: encoded as text, truncated at tokens', () => {
    const p = prepareCorpus(C('sample.txt'), { tokenizer: tok, labels: [], format: 'text', maxLength: 5 });
    expect(p.records.map((r) => r.input_ids)).toEqual([[101, 1996, 4937, 2938, 102], [101, 15768, 3062, 9249, 102]]);
    expect(p.stats.truncatedSentences).toBe(2);
    expect(preparedJsonl(p).split('\n')[0]).toBe('{"input_ids":[101,1996,4937,2938,102],"attention_mask":[1,1,1,1,1],"text":"The cat sat on the mat."}');
  });

  test('label requests', () => {
    expect(parseLabelRequest('feats=feats.Number')).toEqual({ name: 'feats', column: 'feats.Number' });
    expect(() => parseLabelRequest('pos')).toThrow('--label pos: expected NAME=COLUMN (e.g. pos=upos, ner=3)');
    expect(() => parseLabelRequest('input_ids=3')).toThrow("--label input_ids=3: 'input_ids' is a reserved key; choose another label name");
  });
});


describe('grl-onnx data prepare', () => {
  test('writes OUT.jsonl and OUT.labels.json; dev with --labels-from', async () => {
    const out = path.join(tmp.dir(), 'train.jsonl');
    const r = await cli(['data', 'prepare', C('sample.conll'), '--tokenizer', BERT_FILE, '--label', 'ner=3', '--label', 'pos=1', '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out}: 3 sentences (conll), 13 words → 23 tokens, longest 11\n${path.join(tmp.dir(), 'train.labels.json')}: ner 6, pos 8 labels (sorted)\n`);
    const vocab = JSON.parse(fs.readFileSync(path.join(tmp.dir(), 'train.labels.json'), 'utf8'));
    expect(vocab).toEqual({ ner: ['B-LOC', 'B-MISC', 'B-ORG', 'B-PER', 'I-PER', 'O'], pos: ['.', 'CD', 'JJ', 'NN', 'NNP', 'TO', 'VB', 'VBZ'] });
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect([2848, 13934].map((i) => tok.idToToken(i))).toEqual(['peter', 'blackburn']);
    expect(lines[1]).toEqual({ input_ids: [101, 2848, 13934, 102], attention_mask: [1, 1, 1, 1], ner: [-100, 3, 4, -100], pos: [-100, 4, 4, -100], words: ['Peter', 'Blackburn'] });

    const dev = write('dev.conll', 'Paris NNP B-NP B-LOC\nis VBZ B-VP O\n');
    const devOut = path.join(tmp.dir(), 'dev.jsonl');
    const d = await cli(['data', 'prepare', dev, '--tokenizer', BERT_FILE, '--label', 'ner=3', '--labels-from', path.join(tmp.dir(), 'train.labels.json'), '-o', devOut]);
    expect(d.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(devOut, 'utf8')).ner).toEqual([-100, 0, 5, -100]);
    expect(fs.readFileSync(path.join(tmp.dir(), 'dev.labels.json'), 'utf8')).toBe(`${JSON.stringify({ ner: vocab.ner }, null, 1)}\n`);
  });

  test('bad input: one line naming file:line, exit 1, nothing written', async () => {
    const out = path.join(tmp.dir(), 'out.jsonl');
    const r = await cli(['data', 'prepare', C('malformed/order.conllu'), '--tokenizer', BERT_FILE, '--label', 'pos=upos', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`grl-onnx: ${C('malformed/order.conllu')}:6: word ID 3 out of order (expected 2)\n`);
    const w = await cli(['data', 'prepare', C('sample.wordtag'), '--tokenizer', BERT_FILE, '--label', 'pos=upos', '--format', 'conllu', '-o', out]);
    expect(w.stderr).toBe(`grl-onnx: ${C('sample.wordtag')}:1: not CoNLL-U: this looks like word/TAG (--format wordtag)\n`);
    const e = await cli(['data', 'prepare', write('empty.conllu', ''), '--tokenizer', BERT_FILE, '--label', 'pos=upos', '-o', out]);
    expect(e.stderr).toBe(`grl-onnx: ${path.join(tmp.dir(), 'empty.conllu')}: empty file\n`);
    const u = await cli(['data', 'prepare', C('sample.conllu'), '--tokenizer', BERT_FILE, '--label', 'pos=UPOS', '-o', out]);
    expect(u.stderr).toBe("grl-onnx: --label pos=UPOS: unknown CoNLL-U column 'UPOS' (use form, lemma, upos, xpos, deprel, head, feats.<Feature>, misc.<Key>, label or comment.<key>)\n");
    const none = await cli(['data', 'prepare', C('sample.conllu'), '--tokenizer', BERT_FILE, '-o', out]);
    expect(none.stderr).toBe('grl-onnx: give at least one --label NAME=COLUMN (or --format text for unlabelled text)\n');
    const twice = await cli(['data', 'prepare', C('sample.conllu'), '--tokenizer', BERT_FILE, '--label', 'pos=upos', '--label', 'pos=xpos', '-o', out]);
    expect(twice.stderr).toBe('grl-onnx: --label pos: given twice\n');
    expect(fs.readdirSync(tmp.dir()).filter((f) => f.startsWith('out'))).toEqual([]);
  });

  test('never overwrites an input', async () => {
    const corpus = write('c.jsonl', fs.readFileSync(C('sample.jsonl'), 'utf8'));
    const before = fs.readFileSync(corpus, 'utf8');
    const r = await cli(['data', 'prepare', corpus, '--tokenizer', BERT_FILE, '--label', 'pos=pos', '-o', corpus]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`grl-onnx: ${corpus}: is an input; it would be overwritten by the output (${corpus})\n`);
    expect(fs.readFileSync(corpus, 'utf8')).toBe(before);
  });
});
