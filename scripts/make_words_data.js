#!/usr/bin/env node
/*
 * data/words/{train,dev,test}.jsonl: the shipped sentences as words with their
 * tag names, `{"words": [...], "pos": ["DET", ...], "ner": ["O", ...]}`, the
 * corpus format that `--tokenizer` reads (any subword tokenizer, e.g. the
 * pretrained encoder's WordPiece). data/<split>.jsonl keeps only ids of the
 * project's word vocabulary (rare words are [UNK]), so the words are recovered by
 * re-tokenizing each sentence's `text` with the same wink-nlp model that made
 * the data (scripts/make_data.js); the script checks that every sentence gives
 * the same number of tokens and the same in-vocabulary words as its ids, and
 * fails otherwise. Deterministic: rerunning rewrites identical files.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const winkNLP = require('wink-nlp');
const winkModel = require('wink-eng-lite-web-model');

const DATA = path.join(__dirname, '..', 'data');
const OUT = path.join(DATA, 'words');

/**
 * The sentence's tokens as its ids have them. Alone, a sentence can tokenize a
 * little differently from inside its fortune (wink splits or keeps "man's"
 * depending on context: 38 of 13,000 sentences), so a known id that spells two
 * wink tokens joins them, and a wink token that spells two known ids is split;
 * anything else is an error naming the line.
 */
function alignTokens(tokens, ids, vocab, where) {
  const out = [];
  let t = 0;
  for (let i = 0; i < ids.length; i++) {
    const want = ids[i] === 1 ? null : vocab[ids[i]];
    const tok = tokens[t];
    if (tok === undefined) throw new Error(`${where}: wink gives fewer tokens than the ids (${ids.length})`);
    const next = ids[i + 1] !== undefined && ids[i + 1] !== 1 ? vocab[ids[i + 1]] : null;
    const lower = (x) => (x === undefined ? undefined : x.toLowerCase());
    if (want === null && next !== null && lower(tokens[t + 1]) !== next && lower(tokens[t + 2]) === next) {
      out.push(tok + tokens[t + 1]); // an [UNK] word that wink now splits ("woman" "'s")
      t += 2;
    } else if (want === null || tok.toLowerCase() === want) {
      out.push(tok);
      t += 1;
    } else if (tokens[t + 1] !== undefined && (tok + tokens[t + 1]).toLowerCase() === want) {
      out.push(tok + tokens[t + 1]);
      t += 2;
    } else if (next !== null && tok.toLowerCase() === want + next) {
      out.push(tok.slice(0, want.length), tok.slice(want.length));
      t += 1;
      i += 1;
    } else {
      throw new Error(`${where}: token ${i} is '${tok}', the ids say '${want}'`);
    }
  }
  if (t !== tokens.length) throw new Error(`${where}: wink gives ${tokens.length} tokens, the ids have ${ids.length}`);
  return out;
}

function main() {
  const nlp = winkNLP(winkModel);
  const its = nlp.its;
  const vocab = fs.readFileSync(path.join(DATA, 'vocab.txt'), 'utf8').split('\n');
  const labels = JSON.parse(fs.readFileSync(path.join(DATA, 'labels.json'), 'utf8'));
  fs.mkdirSync(OUT, { recursive: true });
  for (const split of ['train', 'dev', 'test']) {
    const file = path.join(DATA, `${split}.jsonl`);
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
    const rows = lines.map((l, k) => {
      const r = JSON.parse(l);
      const words = alignTokens(nlp.readDoc(r.text).tokens().out(its.value), r.input_ids, vocab, `${file}:${k + 1}`);
      return { words, pos: r.pos.map((p) => labels.pos[p]), ner: r.ner.map((n) => labels.ner[n]) };
    });
    fs.writeFileSync(path.join(OUT, `${split}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    process.stdout.write(`wrote ${path.relative(process.cwd(), path.join(OUT, `${split}.jsonl`))}: ${rows.length} sentences\n`);
  }
}

if (require.main === module) {
  try { main(); } catch (err) { process.stderr.write(`make_words_data: ${err.message}\n`); process.exit(1); }
}
