// The tokenizer adapter against real ids: the bert-base-uncased vocabulary rebuilt by
// scripts/make-tokenizers.js, and the byte-level BPE fixture whose ids follow from its
// construction (byte b = id 4 + b, merges from 260 in merge order, <mask> 274).
import * as path from 'path';
import { loadTokenizer } from '../../src/tokenize/tokenizer';
import { alignWords } from '../../src/tokenize/align';
import { GrlError } from '../../src/onnx/errors';
import { useTempDir } from '../helpers/tmpdir';

const BERT = path.join(__dirname, '../../models/bert-base-uncased-tokenizer.json');
const BPE = path.join(__dirname, '../fixtures/tokenizers/bpe-tokenizer.json');
const tmp = useTempDir('grl-tok-');

describe('bert-base-uncased WordPiece', () => {
  const tok = loadTokenizer(BERT);

  test('known special ids and vocabulary size', () => {
    expect(tok.vocabSize).toBe(30522);
    expect([tok.tokenToId('[PAD]'), tok.tokenToId('[UNK]'), tok.tokenToId('[CLS]'), tok.tokenToId('[SEP]'), tok.tokenToId('[MASK]')]).toEqual([0, 100, 101, 102, 103]);
    expect(tok.maskTokenId).toBe(103);
    expect(tok.padTokenId).toBe(0);
    expect([...tok.specialIds].sort((a, b) => a - b)).toEqual([0, 100, 101, 102, 103]);
    expect(tok.tokenToId('the')).toBe(1996);
    expect(tok.idToToken(1996)).toBe('the');
    expect(tok.idToToken(1)).toBe('[unused0]');
  });

  test('the Hugging Face documentation example gives its published ids', () => {
    // transformers docs: tokenizer("Hello, my dog is cute") for bert-base-uncased.
    expect(tok.encodeText('Hello, my dog is cute').ids).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
  });

  test('multi-piece words, lowercasing and accent stripping', () => {
    const e = tok.encodeWords(['Tokenization', 'is', 'unaffable', 'Café']);
    expect(e.ids.map((i) => tok.idToToken(i))).toEqual(['[CLS]', 'token', '##ization', 'is', 'una', '##ffa', '##ble', 'cafe', '[SEP]']);
    expect(e.ids).toEqual([101, 19204, 3989, 2003, 14477, 20961, 3468, 7668, 102]);
    expect(e.wordIds).toEqual([null, 0, 0, 1, 2, 2, 2, 3, null]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  test('a word the pre-tokeniser splits keeps one word id; no special tokens on request', () => {
    const e = tok.encodeWords(["Johanson's", 'house'], { addSpecialTokens: false });
    expect(e.ids).toEqual([13093, 3385, 1005, 1055, 2160]);
    expect(e.wordIds).toEqual([0, 0, 0, 0, 1]);
  });

  test('encodeText marks special tokens in the text too', () => {
    const e = tok.encodeText('the [MASK] sat');
    expect(e.ids).toEqual([101, 1996, 103, 2938, 102]);
    expect(e.specialTokensMask).toEqual([1, 0, 1, 0, 1]);
    expect(e.wordIds).toEqual([null, null, null, null, null]);
  });
});

describe('byte-level BPE fixture (RoBERTa-style)', () => {
  const tok = loadTokenizer(BPE);

  test('specials, vocabulary size', () => {
    expect(tok.vocabSize).toBe(275);
    expect(tok.maskTokenId).toBe(274);
    expect(tok.padTokenId).toBe(1);
    expect([...tok.specialIds].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 274]);
  });

  test('merges by rank, worked out by hand', () => {
    // "The": T (4+84=88), h e → he (260). " cat": a t (263) first, then Ġ c (264), then Ġc at → Ġcat (265).
    // " sat" → Ġsat (267). <s> 0 … </s> 2.
    expect(tok.encodeText('The cat sat').ids).toEqual([0, 88, 260, 265, 267, 2]);
    // "running" at sentence start has no Ġ: r (4+114=118), u n → un (270), n (4+110=114), i n → in, in g → ing (269).
    expect(tok.encodeText('running', { addSpecialTokens: false }).ids).toEqual([118, 270, 114, 269]);
    // After a space: Ġ r → Ġr, Ġr un → Ġrun (272), n, ing.
    expect(tok.encodeText(' running', { addSpecialTokens: false }).ids).toEqual([272, 114, 269]);
    // é is two bytes, 0xC3 0xA9 → ids 4+195, 4+169.
    expect(tok.encodeText('é', { addSpecialTokens: false }).ids).toEqual([199, 173]);
  });

  test('pre-split words get the leading-space symbol on every word but the first, as in running text', () => {
    const e = tok.encodeWords(['The', 'cat', 'running']);
    expect(e.ids).toEqual([0, 88, 260, 265, 272, 114, 269, 2]);
    expect(e.wordIds).toEqual([null, 0, 0, 1, 2, 2, 2, null]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 0, 0, 0, 0, 1]);
    expect(tok.encodeWords(['running', 'The']).ids).toEqual([0, 118, 270, 114, 269, 36, 88, 260, 2]);
  });

  test('<mask> strips the space before it (lstrip), like the Rust library', () => {
    expect(tok.encodeText('the <mask> sat', { addSpecialTokens: false }).ids).toEqual([120, 260, 274, 267]);
  });
});

describe('word-by-word encoding equals the library on joined text', () => {
  const sentences = [
    ['Pierre', 'Vinken', ',', '61', 'years', 'old', ',', 'will', 'join', 'the', 'board', '.'],
    ['They', "don't", 'like', 'naïve', 'résumés', '!'],
    ['1/2', 'of', 'U.S.', 'cats', 'sat', '...'],
  ];
  test.each([BERT, BPE])('%s', (file) => {
    const tok = loadTokenizer(file);
    for (const words of sentences) {
      expect(tok.encodeWords(words).ids).toEqual(tok.encodeText(words.join(' ')).ids);
    }
  });

  test('a SentencePiece-style normaliser that prepends ▁ itself: words are encoded bare', () => {
    // Llama-style: normaliser Prepend("▁") + Replace(" ", "▁"), no pre-tokeniser. Encoding " cat"
    // would give "▁▁cat"; the load-time probe notices and encodes later words without the space.
    const pieces = ['<unk>', '<s>', '</s>', '▁', 't', 'h', 'e', 'c', 'a', 's', '▁t', 'he', '▁the', 'at', '▁c', '▁cat', '▁s', '▁sat'];
    const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
    const merges = ['▁ t', 'h e', '▁t he', 'a t', '▁ c', '▁c at', '▁ s', '▁s at'];
    const json = {
      version: '1.0', added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null,
      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
      decoder: null,
      model: { type: 'BPE', vocab, merges, unk_token: '<unk>', fuse_unk: true, byte_fallback: false },
    };
    const file = tmp.write('tokenizer.json', JSON.stringify(json));
    const tok = loadTokenizer(file);
    expect(tok.encodeText('the cat sat').ids).toEqual([1, 12, 15, 17]);
    // What the space-joined encoding would give: "▁▁cat" → ▁, ▁cat.
    expect(tok.encodeText(' cat', { addSpecialTokens: false }).ids).toEqual([3, 15]);
    const e = tok.encodeWords(['the', 'cat', 'sat']);
    expect(e.ids).toEqual([1, 12, 15, 17]);
    expect(e.wordIds).toEqual([null, 0, 1, 2]);
  });
});

describe('Unigram (SentencePiece-style, Metaspace)', () => {
  test('word ids, </s> from the template, and the same ids as the joined text', () => {
    // Scores are log-probabilities: "cats" is best as ▁cat + s (-2.5 - 3) rather than ▁c + at + s.
    const vocab = [['<unk>', 0], ['<s>', 0], ['</s>', 0], ['▁', -3], ['▁the', -2], ['▁cat', -2.5], ['s', -3], ['▁sat', -2.6], ['▁c', -4], ['at', -4], ['a', -5], ['t', -5]];
    const json = {
      model: { type: 'Unigram', unk_id: 0, vocab, byte_fallback: false }, normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: { type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }], pair: [], special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } },
      decoder: null, added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
    };
    const tok = loadTokenizer(tmp.write('unigram.json', JSON.stringify(json)));
    const e = tok.encodeWords(['the', 'cats', 'sat']);
    expect(e.ids).toEqual([4, 5, 6, 7, 2]);
    expect(e.wordIds).toEqual([0, 1, 1, 2, null]);
    expect(e.specialTokensMask).toEqual([0, 0, 0, 0, 1]);
    expect(tok.encodeText('the cats sat').ids).toEqual(e.ids);
    expect(tok.vocabSize).toBe(12);
    expect(tok.padTokenId).toBe(0); // no [PAD] / <pad>
    expect(tok.maskTokenId).toBeNull();
    // No leading special token: truncation keeps the closing </s> only.
    const a = alignWords(tok, ['the', 'cats', 'sat'], [[1, 2, 3]], { maxLength: 3 });
    expect([a.ids, a.labels, a.truncatedWords]).toEqual([[4, 5, 2], [[1, 2, -100]], 2]);
  });
});

describe('bad tokenizer files', () => {
  const { dir, write } = tmp;
  test('missing, not JSON, not a tokenizer, unknown model type', () => {
    const missing = path.join(dir(), 'nope.json');
    expect(() => loadTokenizer(missing)).toThrow(new GrlError(`${missing}: cannot read tokenizer (ENOENT)`));
    const bad = write('bad.json', '{oops');
    expect(() => loadTokenizer(bad)).toThrow(/bad\.json: not a tokenizer\.json \(/);
    const vocab = write('vocab.json', '{"the": 1}');
    expect(() => loadTokenizer(vocab)).toThrow(`${vocab}: not a tokenizer.json (no "model" object; expected the Hugging Face fast-tokenizer file)`);
    const odd = write('odd.json', JSON.stringify({ model: { type: 'Nonsense', vocab: {} } }));
    expect(() => loadTokenizer(odd)).toThrow(`${odd}: unsupported tokenizer model type "Nonsense" (supported: WordPiece, BPE, Unigram)`);
    const noVocab = write('novocab.json', JSON.stringify({ model: { type: 'WordPiece' } }));
    expect(() => loadTokenizer(noVocab)).toThrow(/novocab\.json: unsupported tokenizer\.json \(/);
  });
});
