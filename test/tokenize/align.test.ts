// Word → subword label alignment on hand-made sentences with the real bert-base-uncased ids.
import * as path from 'path';
import { loadTokenizer } from '../../src/tokenize/tokenizer';
import { alignWords, truncateEncoding } from '../../src/tokenize/align';

const tok = loadTokenizer(path.join(__dirname, '../../models/bert-base-uncased-tokenizer.json'));
const BPE = loadTokenizer(path.join(__dirname, '../fixtures/tokenizers/bpe-tokenizer.json'));
// [CLS] token ##ization is una ##ffa ##ble [SEP]
const words = ['Tokenization', 'is', 'unaffable'];
const pos = [7, 3, 5];
const ner = [1, -100, 2];

describe('alignWords', () => {
  test('first subword carries the label, others and specials -100', () => {
    const a = alignWords(tok, words, [pos, ner]);
    expect(a.ids).toEqual([101, 19204, 3989, 2003, 14477, 20961, 3468, 102]);
    expect(a.labels).toEqual([
      [-100, 7, -100, 3, 5, -100, -100, -100],
      [-100, 1, -100, -100, 2, -100, -100, -100],
    ]);
    expect(a.truncatedWords).toBe(0);
    expect(a.emptyWords).toBe(0);
  });

  test('labelAllSubwords gives every subword the word label', () => {
    const a = alignWords(tok, words, [pos], { labelAllSubwords: true });
    expect(a.labels).toEqual([[-100, 7, 7, 3, 5, 5, 5, -100]]);
  });

  test('byte-level BPE: <s> and </s> get -100', () => {
    const a = alignWords(BPE, ['The', 'cat', 'running'], [[1, 2, 3]]);
    expect(a.ids).toEqual([0, 88, 260, 265, 272, 114, 269, 2]);
    expect(a.labels).toEqual([[-100, 1, -100, 2, 3, -100, -100, -100]]);
  });

  test('truncation keeps [SEP], counts words cut, keeps the label of a partly kept word', () => {
    // 6 tokens: [CLS] token ##ization is una [SEP] -- "unaffable" loses ##ffa ##ble.
    const a = alignWords(tok, words, [pos], { maxLength: 6 });
    expect(a.ids).toEqual([101, 19204, 3989, 2003, 14477, 102]);
    expect(a.labels).toEqual([[-100, 7, -100, 3, 5, -100]]);
    expect(a.truncatedWords).toBe(1);
    // 4 tokens: [CLS] token ##ization [SEP] -- "is" and "unaffable" are cut.
    const b = alignWords(tok, words, [pos], { maxLength: 4 });
    expect(b.ids).toEqual([101, 19204, 3989, 102]);
    expect(b.truncatedWords).toBe(2);
    // Exactly fitting is not truncation.
    expect(alignWords(tok, words, [pos], { maxLength: 8 }).truncatedWords).toBe(0);
  });

  test('a max length with no room for a token is an error', () => {
    expect(() => alignWords(tok, words, [pos], { maxLength: 2 })).toThrow('max length 2 leaves no room for a token between the 2 special tokens');
  });

  test('a word that becomes no token is counted, not mislabelled', () => {
    // U+200B is removed by the BERT normaliser's clean_text: the word vanishes.
    const a = alignWords(tok, ['the', '\u200b', 'cat'], [[1, 2, 3]]);
    expect(a.ids).toEqual([101, 1996, 4937, 102]);
    expect(a.labels).toEqual([[-100, 1, 3, -100]]);
    expect(a.emptyWords).toBe(1);
  });
});

test('truncateEncoding on text keeps both special runs', () => {
  const e = tok.encodeText('the cat sat on the mat');
  const t = truncateEncoding(e, 5);
  expect(t.ids).toEqual([101, 1996, 4937, 2938, 102]);
  expect(t.specialTokensMask).toEqual([1, 0, 0, 0, 1]);
  expect(truncateEncoding(e, 100)).toBe(e);
});
