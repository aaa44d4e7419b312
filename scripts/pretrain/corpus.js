#!/usr/bin/env node
// Pretraining text for scripts/pretrain-encoder.sh (deterministic).
//
//   node scripts/pretrain/corpus.js OUT_DIR [--kjv N]
//
// Writes into OUT_DIR:
//   train.txt     the `text` of data/train.jsonl (10,000 fortunes sentences), then the first N
//                 verses of the King James Bible (Debian `bible-kjv`, default all 31,102), one per line
//   dev.txt, test.txt   the `text` of data/dev.jsonl / data/test.jsonl (held out: never trained on)
// The POS probe data is data/words/ (the same sentences as words with their silver UPOS tags).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const out = args[0];
if (!out) throw new Error('usage: corpus.js OUT_DIR [--kjv N]');
const kjvAt = args.indexOf('--kjv');
const kjvLimit = kjvAt >= 0 ? Number(args[kjvAt + 1]) : Infinity;

const readSplit = (s) => fs.readFileSync(path.join(ROOT, 'data', `${s}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

/** Verses of the KJV from the `bible` program (Debian bible-kjv), reference stripped. */
function kjvVerses() {
  const text = execFileSync('bible', ['-f', 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, COLUMNS: '100000' } });
  return text.split('\n').map((l) => l.replace(/^\S+\d+:\d+\s+/, '').trim()).filter(Boolean);
}

function writeLines(file, lines) {
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return lines.length;
}

fs.mkdirSync(out, { recursive: true });
const report = {};
for (const split of ['train', 'dev', 'test']) {
  const text = readSplit(split).map((r) => r.text);
  if (split === 'train') {
    const kjv = kjvVerses().slice(0, kjvLimit);
    report.kjvVerses = kjv.length;
    text.push(...kjv);
  }
  report[`${split}.txt`] = writeLines(path.join(out, `${split}.txt`), text);
}
console.log(JSON.stringify(report));
