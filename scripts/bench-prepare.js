#!/usr/bin/env node
/**
 * Data-preparation speed (issue 10 §6): tokenize and align 10,000 sentences of 20 words
 * with the bert-base-uncased tokenizer, labels on first subwords. Target: ≤ 2 s.
 *
 * The words are the shipped corpus (data/words/train.jsonl, real English sentences with
 * UPOS tags) cut into 20-word sentences, cycling when it runs out, so word frequencies
 * (and the per-word cache hit rate) are those of real text. Timed: prepareSentences on a
 * fresh tokenizer (cold word cache), then again on the same one (warm), best of --runs.
 * Parsing the corpus file is timed separately. A script, never a timed test.
 *
 *   node scripts/bench-prepare.js [--sentences 10000] [--words 20] [--runs 3]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { ensureBuilt, intArg, printMachine, now } = require('./bench-common');

ensureBuilt();
const ROOT = path.join(__dirname, '..');
const { loadTokenizer } = require(path.join(ROOT, 'dist/tokenize/tokenizer'));
const { prepareSentences } = require(path.join(ROOT, 'dist/data/prepare'));
const { readCorpus } = require(path.join(ROOT, 'dist/data/formats'));

const N = intArg('sentences', 10000);
const W = intArg('words', 20);
const RUNS = intArg('runs', 3);
const TOKENIZER = path.join(ROOT, 'models/bert-base-uncased-tokenizer.json');
const CORPUS = path.join(ROOT, 'data/words/train.jsonl');

let t = now();
const { sentences: source } = readCorpus(CORPUS, [{ name: 'pos', column: 'pos' }]);
const parseMs = now() - t;
const words = source.flatMap((s) => s.words);
const tags = source.flatMap((s) => s.labels.pos);
const sentences = [];
for (let i = 0, k = 0; i < N; i++) {
  const ws = [];
  const ls = [];
  for (let j = 0; j < W; j++, k = (k + 1) % words.length) {
    ws.push(words[k]);
    ls.push(tags[k]);
  }
  sentences.push({ words: ws, labels: { pos: ls }, line: i + 1 });
}

const opts = (tokenizer) => ({ tokenizer, labels: [{ name: 'pos', column: 'pos' }], maxLength: 512 });
const time = (fn) => {
  const t0 = now();
  const r = fn();
  return { ms: now() - t0, r };
};
let cold = Infinity;
let warm = Infinity;
let load = Infinity;
let tokens = 0;
for (let run = 0; run < RUNS; run++) {
  const l = time(() => loadTokenizer(TOKENIZER));
  load = Math.min(load, l.ms);
  const c = time(() => prepareSentences(sentences, 'bench', 'jsonl', opts(l.r)));
  cold = Math.min(cold, c.ms);
  tokens = c.r.stats.tokens;
  warm = Math.min(warm, time(() => prepareSentences(sentences, 'bench', 'jsonl', opts(l.r))).ms);
}

printMachine();
console.log(`corpus: ${N} sentences × ${W} words = ${N * W} words → ${tokens} tokens (words from ${path.relative(ROOT, CORPUS)}, parsed in ${parseMs.toFixed(0)} ms: ${source.length} sentences)`);
console.log(`tokenizer load      ${load.toFixed(0)} ms (bert-base-uncased, 30,522 pieces)`);
console.log(`tokenize + align    ${cold.toFixed(0)} ms cold cache, ${warm.toFixed(0)} ms warm (best of ${RUNS}); target ≤ 2000 ms`);
console.log(`                    ${((N / cold) * 1000).toFixed(0)} sentences/s cold, ${((N / warm) * 1000).toFixed(0)} warm`);
