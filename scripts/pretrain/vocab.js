#!/usr/bin/env node
// A bert-base-uncased WordPiece tokenizer cut down to the pretraining corpus (deterministic).
//
//   node scripts/pretrain/vocab.js CORPUS.txt OUT/tokenizer.json [--min-count N]
//
// Keeps, in bert-base-uncased id order: the five special tokens, every piece the full tokenizer
// emits at least N times (default 3) on CORPUS, and every single-character piece and its `##`
// form for the characters of printable ASCII, so any English word still tokenizes (into smaller
// pieces) instead of becoming [UNK]. Ids are renumbered 0..V-1 ([PAD] 0, [UNK] 1, [CLS] 2,
// [SEP] 3, [MASK] 4); everything else in the file (normalizer, pre-tokenizer, [CLS] $A [SEP]
// template) is the real tokenizer's. Greedy longest-match WordPiece gives a corpus word the
// same pieces as the full vocabulary whenever all of them were kept.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@huggingface/tokenizers');

const ROOT = path.resolve(__dirname, '..', '..');
const [corpus, outFile, ...rest] = process.argv.slice(2);
if (!corpus || !outFile) throw new Error('usage: vocab.js CORPUS.txt OUT/tokenizer.json [--min-count N]');
const at = rest.indexOf('--min-count');
const minCount = at >= 0 ? Number(rest[at + 1]) : 3;

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const full = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'bert-base-uncased-tokenizer.json'), 'utf8'));
const fullVocab = full.model.vocab;
const byId = [];
for (const [t, id] of Object.entries(fullVocab)) byId[id] = t;
const tok = new Tokenizer(full, {});
const lines = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.trim());

const counts = new Map();
let tokens = 0;
for (const l of lines) {
  for (const id of tok.encode(l, { add_special_tokens: false }).ids) {
    counts.set(id, (counts.get(id) ?? 0) + 1);
    tokens++;
  }
}
const keep = new Set(SPECIALS.map((t) => fullVocab[t]));
for (const [id, c] of counts) if (c >= minCount) keep.add(id);
for (let c = 0x21; c <= 0x7e; c++) {
  const ch = String.fromCharCode(c).toLowerCase();
  for (const piece of [ch, `##${ch}`]) if (piece in fullVocab) keep.add(fullVocab[piece]);
}
const kept = [...keep].sort((a, b) => a - b);
// Specials first so their ids are small and fixed; then the rest in bert-base-uncased order.
const order = [...SPECIALS.map((t) => fullVocab[t]), ...kept.filter((id) => !SPECIALS.includes(byId[id]))];
const vocab = Object.fromEntries(order.map((id, i) => [byId[id], i]));
const idOf = (t) => vocab[t];

const out = {
  ...full,
  added_tokens: full.added_tokens.map((a) => ({ ...a, id: idOf(a.content) })),
  post_processor: {
    ...full.post_processor,
    special_tokens: Object.fromEntries(Object.entries(full.post_processor.special_tokens).map(([k, v]) => [k, { ...v, ids: v.tokens.map(idOf) }])),
  },
  model: { ...full.model, vocab },
};
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(`${outFile}.tmp`, `${JSON.stringify(out, null, 1)}\n`);
fs.renameSync(`${outFile}.tmp`, outFile);

// Check: the cut tokenizer on the corpus.
const small = new Tokenizer(out, {});
let smallTokens = 0;
let unk = 0;
for (const l of lines) {
  const ids = small.encode(l, { add_special_tokens: false }).ids;
  smallTokens += ids.length;
  unk += ids.filter((x) => x === vocab['[UNK]']).length;
}
console.log(JSON.stringify({ lines: lines.length, fullVocabPiecesSeen: counts.size, minCount, vocabSize: order.length, tokensFull: tokens, tokensCut: smallTokens, unkCut: unk, file: outFile }));
