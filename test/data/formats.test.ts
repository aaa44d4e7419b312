// Each corpus format parses its committed fixture exactly, and each malformed
// variant fails with one FILE:LINE line.
import * as fs from 'fs';
import * as path from 'path';
import { readCorpus, detectFormat } from '../../src/data/formats';
import { readConllu } from '../../src/data/formats/conllu';
import { loadJsonl } from '../../src/data/jsonl';
import { loadLabelFile } from '../../src/heads/labels';
import { useTempDir } from '../helpers/tmpdir';

const DIR = path.join(__dirname, '../fixtures/corpora');
const F = (name: string) => path.join(DIR, name);

describe('CoNLL-U', () => {
  test('words, multiword tokens, empty nodes, comments, no final blank line', () => {
    const raw = readConllu(fs.readFileSync(F('sample.conllu'), 'utf8'), 'x');
    expect(raw.map((s) => s.words.map((w) => w.id))).toEqual([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7], [1, 2]]);
    expect(raw[0].multiword).toEqual([{ from: 3, to: 4, form: 'du', line: 7 }]);
    expect(raw[0].comments).toEqual({ 'newdoc id': 'grl-sample', sent_id: 'fr-1', text: 'Il parle du chat.', label: 'animals' });
    expect(raw[2].comments).toEqual({ sent_id: 'en-2', text: 'Cats sleep' });
  });

  test('label columns: upos, xpos with _, feats.Number, head offsets, deprel, sentence label', () => {
    const cols = ['upos', 'xpos', 'feats.Number', 'head', 'deprel', 'label', 'comment.sent_id', 'lemma'].map((c) => ({ name: c, column: c }));
    const { format, sentences } = readCorpus(F('sample.conllu'), cols);
    expect(format).toBe('conllu');
    expect(sentences.map((s) => s.words)).toEqual([
      ['Il', 'parle', 'de', 'le', 'chat', '.'],
      ['Mary', 'likes', 'tea', 'and', 'John', 'coffee', '.'],
      ['Cats', 'sleep'],
    ]);
    expect(sentences.map((s) => s.line)).toEqual([5, 16, 27]);
    expect(sentences[0].wordLines).toEqual([5, 6, 8, 9, 10, 11]);
    expect(sentences[1].wordLines).toEqual([16, 17, 18, 19, 20, 22, 23]);
    const [fr, en, cats] = sentences.map((s) => s.labels);
    expect(fr.upos).toEqual(['PRON', 'VERB', 'ADP', 'DET', 'NOUN', 'PUNCT']);
    expect(fr.xpos).toEqual([null, null, null, null, null, null]);
    expect(fr['feats.Number']).toEqual(['Sing', 'Sing', null, 'Sing', 'Sing', null]);
    expect(fr.head).toEqual(['+1', 'root', '+2', '+1', '-3', '-4']);
    expect(fr.deprel).toEqual(['nsubj', 'root', 'case', 'det', 'obl', 'punct']);
    expect(fr.label).toBe('animals');
    expect(fr['comment.sent_id']).toBe('fr-1');
    expect(en.xpos).toEqual(['NNP', 'VBZ', 'NN', 'CC', 'NNP', 'NN', '.']);
    expect(en.head).toEqual(['+1', 'root', '-1', '+1', '-3', '-1', '-5']);
    expect(en.lemma).toEqual(['Mary', 'like', 'tea', 'and', 'John', 'coffee', '.']);
    expect(en.label).toBe('food');
    expect(cats.label).toBeNull();
    expect(cats['feats.Number']).toEqual(['Plur', 'Plur']);
  });

  test('malformed files: one FILE:LINE line each', () => {
    expect(() => readCorpus(F('malformed/columns.conllu'), [])).toThrow(`${F('malformed/columns.conllu')}:8: expected 10 tab-separated columns, found 9`);
    expect(() => readCorpus(F('malformed/order.conllu'), [])).toThrow(`${F('malformed/order.conllu')}:6: word ID 3 out of order (expected 2)`);
    expect(() => readCorpus(F('malformed/feats.conllu'), [{ name: 'n', column: 'feats.Number' }])).toThrow(`${F('malformed/feats.conllu')}:9: malformed FEATS 'Definite' (expected Name=Value)`);
    expect(() => readCorpus(F('sample.conllu'), [{ name: 'pos', column: 'upostag' }])).toThrow("--label pos=upostag: unknown CoNLL-U column 'upostag' (use form, lemma, upos, xpos, deprel, head, feats.<Feature>, misc.<Key>, label or comment.<key>)");
  });

  const { write: w } = useTempDir('grl-conllu-');
  test('more malformed cases', () => {
    const row = (...f: string[]) => f.join('\t');
    const ok1 = row('1', 'a', '_', 'X', '_', '_', '0', 'root', '_', '_');
    const ok2 = row('2', 'b', '_', 'X', '_', '_', '1', 'dep', '_', '_');
    const range = w('range.conllu', `${row('1-3', 'ab', '_', '_', '_', '_', '_', '_', '_', '_')}\n${ok1}\n${ok2}\n`);
    expect(() => readCorpus(range, [])).toThrow(`${range}:3: multiword token ends at word 3, but the sentence ends at word 2`);
    const comment = w('comment.conllu', `${ok1}\n# late\n${ok2}\n`);
    expect(() => readCorpus(comment, [])).toThrow(`${comment}:2: comment line inside a sentence (comments go before its first word line)`);
    const head = w('head.conllu', `${ok1.replace('\t0\t', '\tzero\t')}\n`);
    expect(() => readCorpus(head, [])).toThrow(`${head}:1: HEAD 'zero' is not a word number`);
    const empty = w('empty.conllu', '\n\n');
    expect(() => readCorpus(empty, [])).toThrow(`${empty}: empty file`);
    const onlyComments = w('comments.conllu', '# sent_id = 1\n\n');
    expect(() => readCorpus(onlyComments, [])).toThrow(`${onlyComments}: no sentences (only comments or blank lines)`);
    const crlf = w('crlf.conllu', `# label = x\r\n${ok1}\r\n${ok2}\r\n\r\n`);
    expect(readCorpus(crlf, [{ name: 'l', column: 'label' }, { name: 'p', column: 'deprel' }]).sentences).toEqual([
      { words: ['a', 'b'], labels: { l: 'x', p: ['root', 'dep'] }, line: 2, wordLines: [2, 3] },
    ]);
  });

  test('a UTF-8 byte-order mark (CoNLL-U, JSONL, label files) is not part of the first line', () => {
    const row = (...f: string[]) => f.join('\t');
    const bom = w('bom.conllu', `\uFEFF# label = x\n${row('1', 'a', '_', 'X', '_', '_', '0', 'root', '_', '_')}\n`);
    expect(readCorpus(bom, [{ name: 'l', column: 'label' }, { name: 'p', column: 'upos' }]).sentences).toEqual([
      { words: ['a'], labels: { l: 'x', p: ['X'] }, line: 2, wordLines: [2] },
    ]);
    const jsonl = w('bom.jsonl', '\uFEFF{"words": ["a"], "pos": ["X"]}\n');
    expect(readCorpus(jsonl, [{ name: 'pos', column: 'pos' }]).sentences.map((s) => s.labels)).toEqual([{ pos: ['X'] }]);
    expect(loadJsonl(w('ids.jsonl', '\uFEFF{"input_ids": [1, 2], "pos": [0, 1]}\n'), { inputs: ['input_ids'], labels: [{ key: 'pos', tokenLevel: true }] }).length).toBe(1);
    expect(loadLabelFile(w('pos.txt', '\uFEFFNOUN\nVERB\n'), 'pos')).toEqual(['NOUN', 'VERB']);
  });
});

describe('CoNLL-2003 / IOB', () => {
  test('columns by number, -DOCSTART-, blank lines', () => {
    const { format, sentences } = readCorpus(F('sample.conll'), [{ name: 'ner', column: '3' }, { name: 'pos', column: '1' }, { name: 'last', column: '-1' }]);
    expect(format).toBe('conll');
    expect(sentences).toEqual([
      {
        words: ['EU', 'rejects', 'German', 'call', 'to', 'boycott', 'British', 'lamb', '.'],
        labels: {
          ner: ['B-ORG', 'O', 'B-MISC', 'O', 'O', 'O', 'B-MISC', 'O', 'O'],
          pos: ['NNP', 'VBZ', 'JJ', 'NN', 'TO', 'VB', 'JJ', 'NN', '.'],
          last: ['B-ORG', 'O', 'B-MISC', 'O', 'O', 'O', 'B-MISC', 'O', 'O'],
        },
        line: 3,
        wordLines: [3, 4, 5, 6, 7, 8, 9, 10, 11],
      },
      { words: ['Peter', 'Blackburn'], labels: { ner: ['B-PER', 'I-PER'], pos: ['NNP', 'NNP'], last: ['B-PER', 'I-PER'] }, line: 13, wordLines: [13, 14] },
      { words: ['BRUSSELS', '1996-08-22'], labels: { ner: ['B-LOC', 'O'], pos: ['NNP', 'CD'], last: ['B-LOC', 'O'] }, line: 18, wordLines: [18, 19] },
    ]);
  });

  test('IOBES tags', () => {
    const { sentences } = readCorpus(F('sample-iobes.conll'), [{ name: 'ner', column: '1' }]);
    expect(sentences.map((s) => s.labels.ner)).toEqual([['B-PER', 'E-PER', 'O', 'B-LOC', 'I-LOC', 'E-LOC'], ['S-LOC', 'O']]);
  });

  test('malformed: column count, IOB tag, column out of range, not a number, CoNLL-U given as CoNLL', () => {
    expect(() => readCorpus(F('malformed/columns.conll'), [{ name: 'ner', column: '3' }])).toThrow(`${F('malformed/columns.conll')}:6: 3 columns, but line 3 has 4`);
    expect(() => readCorpus(F('malformed/iob.conll'), [{ name: 'ner', column: '3' }])).toThrow(`${F('malformed/iob.conll')}:14: malformed IOB tag 'PER' in column 3 (expected O, B-X, I-X, E-X or S-X)`);
    expect(() => readCorpus(F('sample.conll'), [{ name: 'ner', column: '4' }])).toThrow(`${F('sample.conll')}:3: --label ner=4: the file has columns 0..3 (0 is the word)`);
    expect(() => readCorpus(F('sample.conll'), [{ name: 'ner', column: 'ner' }])).toThrow('--label ner=ner: CoNLL columns are numbers counted from 0 (the word), e.g. ner=3; -1 is the last column');
    expect(() => readCorpus(F('sample.conllu'), [], 'conll')).toThrow(`${F('sample.conllu')}:1: not CoNLL (IOB columns): this looks like CoNLL-U (--format conllu)`);
  });
});

describe('word/TAG', () => {
  test('tag after the last slash, escaped slashes', () => {
    const { format, sentences } = readCorpus(F('sample.wordtag'), [{ name: 'pos', column: 'tag' }]);
    expect(format).toBe('wordtag');
    expect(sentences).toEqual([
      { words: ['Pierre', 'Vinken', ',', '61', 'years', 'old', ',', 'will', 'join', 'the', 'board', '.'], labels: { pos: ['NNP', 'NNP', ',', 'CD', 'NNS', 'JJ', ',', 'MD', 'VB', 'DT', 'NN', '.'] }, line: 1 },
      { words: ['He', 'ate', '1/2', 'of', 'the', 'pie', 'and/or', 'cake', '.'], labels: { pos: ['PRP', 'VBD', 'CD', 'IN', 'DT', 'NN', 'CC', 'NN', '.'] }, line: 2 },
    ]);
  });

  test('malformed: a token without a tag; wrong format given', () => {
    expect(() => readCorpus(F('malformed/notag.wordtag'), [{ name: 'pos', column: 'tag' }])).toThrow(`${F('malformed/notag.wordtag')}:2: token 'ate' has no /TAG`);
    expect(() => readCorpus(F('sample.wordtag'), [{ name: 'pos', column: 'upos' }], 'conllu')).toThrow(`${F('sample.wordtag')}:1: not CoNLL-U: this looks like word/TAG (--format wordtag)`);
    expect(() => readCorpus(F('sample.wordtag'), [{ name: 'pos', column: 'xpos' }])).toThrow("--label pos=xpos: word/TAG files have one label column, 'tag'");
  });
});

describe('JSONL with words, plain text', () => {
  test('word labels, null, sentence labels', () => {
    const { format, sentences } = readCorpus(F('sample.jsonl'), [{ name: 'pos', column: 'pos' }, { name: 'topic', column: 'topic' }]);
    expect(format).toBe('jsonl');
    expect(sentences).toEqual([
      { words: ['The', 'cat', 'sat'], labels: { pos: ['DET', 'NOUN', 'VERB'], topic: 'animals' }, line: 1 },
      { words: ['Stocks', 'fell', 'sharply'], labels: { pos: ['NOUN', 'VERB', null], topic: 'finance' }, line: 2 },
    ]);
  });

  test('malformed: label length, missing key', () => {
    expect(() => readCorpus(F('malformed/length.jsonl'), [{ name: 'pos', column: 'pos' }])).toThrow(`${F('malformed/length.jsonl')}:2: 'pos' has 1 labels but 'words' has 2`);
    expect(() => readCorpus(F('sample.jsonl'), [{ name: 'ner', column: 'ner' }])).toThrow(`${F('sample.jsonl')}:1: missing key 'ner' (--label ner=ner)`);
  });

  test('plain text lines', () => {
    const { sentences } = readCorpus(F('sample.txt'), [], 'text');
    expect(sentences).toEqual([
      { words: ['The', 'cat', 'sat', 'on', 'the', 'mat.'], labels: {}, line: 1, text: 'The cat sat on the mat.' },
      { words: ['Stocks', 'fell', 'sharply', 'on', 'Monday.'], labels: {}, line: 3, text: 'Stocks fell sharply on Monday.' },
    ]);
  });
});

test('format detection: extension, first line, or an error', () => {
  expect(detectFormat('a.conllu', 'anything')).toBe('conllu');
  expect(detectFormat('a.txt', 'Pierre/NNP Vinken/NNP ,/,\n')).toBe('wordtag');
  expect(detectFormat('a.txt', '\nEU NNP B-NP B-ORG\n')).toBe('conll');
  expect(detectFormat('a.data', '{"words": ["a"]}\n')).toBe('jsonl');
  expect(detectFormat('a.data', '1\tThe\tthe\tDET\t_\t_\t0\troot\t_\t_\n')).toBe('conllu');
  expect(() => detectFormat('a.data', 'word\n')).toThrow('a.data: cannot tell the corpus format; give --format (conllu, conll, wordtag, jsonl, text)');
  // An escaped slash as the word (`\//SYM`, PTB's "/") is word/TAG, also with --format wordtag
  // (the sniffer used to call it CoNLL and refuse the format given).
  const slashes = 'He/PRP ate/VBD 1\\/2/CD \\//SYM a/b/NN\n';
  expect(detectFormat('a.txt', slashes)).toBe('wordtag');
  expect(detectFormat('a.txt', slashes, 'wordtag')).toBe('wordtag');
  expect(detectFormat('a.txt', 'EU NNP 1/2 O\n')).toBe('conll');
});
