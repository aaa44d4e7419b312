#!/usr/bin/env node
/**
 * Data pipeline, step 0 of the amnesic experiment (issue 4 §1): builds the shipped
 * data set in data/ from the English quotations of Debian's `fortunes` packages,
 * silver-tagged with wink-nlp + wink-eng-lite-web-model (UPOS and entity types).
 *
 *   apt-get install -y fortunes fortunes-min
 *   node scripts/make_data.js [--src /usr/share/games/fortunes] [--out data]
 *
 * Output is byte-identical across runs: files are read in sorted order, dedupe keeps
 * the first occurrence, the split uses a seeded shuffle, and every sort has a total
 * order (no localeCompare, no object-key-order surprises).
 */
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { Rng } = require('../dist/data/jsonl');
const winkNLP = require('wink-nlp');
const winkModel = require('wink-eng-lite-web-model');

const SEED = 20240607;
const DEV_SIZE = 1500;
const TEST_SIZE = 1500;
const TRAIN_MAX = 10000;
const MIN_TOKENS = 5;
const MAX_TOKENS = 40;
const MIN_WORD_SHARE = 0.75;
const VOCAB_MIN_FREQ = 2;
const VOCAB_MAX = 10000;
const PAD = '[PAD]';
const UNK = '[UNK]';

// Files of the `fortunes` package left out, and why. fortunes-off is never installed or read.
const EXCLUDED_FILES = {
  art: 'ASCII art',
  'ascii-art': 'ASCII art',
  perl: 'mostly Perl code',
  ethnic: 'jokes built on ethnic stereotypes',
  knghtbrd: 'IRC chat logs',
  'translate-me': 'not English',
};

// The 17 Universal POS tags in UD's canonical order; ids are positions in this list.
const UPOS = ['ADJ', 'ADP', 'ADV', 'AUX', 'CCONJ', 'DET', 'INTJ', 'NOUN', 'NUM', 'PART',
  'PRON', 'PROPN', 'PUNCT', 'SCONJ', 'SYM', 'VERB', 'X'];

// wink's entity types in IO encoding. Types that survive the sentence filter only a
// handful of times are merged, so no head class has almost no examples.
const NER_MAP = {
  DATE: 'DATE', TIME: 'TIME', DURATION: 'DURATION',
  CARDINAL: 'CARDINAL', ORDINAL: 'ORDINAL',
  MONEY: 'QUANTITY', PERCENT: 'QUANTITY',
};
const NER = ['O', 'CARDINAL', 'ORDINAL', 'DATE', 'TIME', 'DURATION', 'QUANTITY'];

// Token types that mark a sentence as not ordinary prose.
const REJECT_TOKEN_TYPES = new Set(['email', 'url', 'emoji', 'emoticon', 'hashtag', 'mention']);

function parseArgs(argv) {
  const opts = { src: '/usr/share/games/fortunes', out: path.join(__dirname, '..', 'data') };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts) || argv[i + 1] === undefined) throw new Error(`usage: make_data.js [--src DIR] [--out DIR] (bad argument ${argv[i]})`);
    opts[key] = argv[i + 1];
  }
  return opts;
}

/** Deterministic 32-bit PRNG (mulberry32, grl-onnx's own Rng); the split must not depend on Math.random. */
function mulberry32(seed) {
  const r = new Rng(seed);
  return () => r.next();
}

function shuffle(items, seed) {
  const rand = mulberry32(seed);
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const byString = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Every fortune file of the package (the ones `strfile` indexed), sorted, minus exclusions. */
function fortuneFiles(src) {
  return fs.readdirSync(src)
    .filter((f) => fs.existsSync(path.join(src, `${f}.dat`)) && !(f in EXCLUDED_FILES))
    .sort(byString);
}

/**
 * One fortune's prose, or null. Attributions ("-- Author") are cut because they are
 * names and titles, not sentences; chat logs and dialogue scripts are dropped whole
 * because their speaker tags break sentence splitting.
 */
function fortuneProse(raw) {
  const lines = raw.split('\n');
  const kept = [];
  for (const line of lines) {
    if (/^\s*--/.test(line)) break;
    if (/^\s*(<[^>]+>|\*\s+\w+|[A-Z][A-Za-z]*:\s)/.test(line)) return null;
    kept.push(line.trim());
  }
  const text = kept.join(' ').replace(/\s+/g, ' ').trim();
  return text.length ? text : null;
}

function readFortunes(src) {
  const out = [];
  for (const file of fortuneFiles(src)) {
    const body = fs.readFileSync(path.join(src, file), 'utf8');
    for (const raw of body.split(/^%$/m)) {
      const text = fortuneProse(raw);
      if (text) out.push({ file, text });
    }
  }
  return out;
}

/** Why a tagged sentence is not kept, or null if it is ordinary prose. */
function rejectReason(s) {
  const n = s.tokens.length;
  if (n < MIN_TOKENS || n > MAX_TOKENS) return 'length';
  if (/[^\x20-\x7e]/.test(s.text)) return 'non-ascii';
  if (/[_|{}=\\#@~^<>\[\]*`]/.test(s.text)) return 'markup';
  if (!/^["'(]?[A-Z]/.test(s.text) || !/[.!?]["')]*$/.test(s.text)) return 'not a full sentence';
  if (s.types.some((t) => REJECT_TOKEN_TYPES.has(t))) return 'special token';
  const words = s.tokens.filter((t, i) => s.types[i] === 'word' && /^[A-Za-z][A-Za-z'.-]*$|^n't$|^'[a-z]+$/.test(t)).length;
  if (words / n < MIN_WORD_SHARE) return 'not mostly alphabetic';
  const letters = s.text.replace(/[^A-Za-z]/g, '');
  if (letters.replace(/[^A-Z]/g, '').length > 0.5 * letters.length) return 'shouting';
  return null;
}

function tagSentences(nlp, fortunes) {
  const its = nlp.its;
  const kept = [];
  const seen = new Set();
  const rejected = {};
  const entityCounts = {};
  for (const { file, text } of fortunes) {
    nlp.readDoc(text).sentences().each((sent) => {
      const tokens = sent.tokens();
      const first = tokens.itemAt(0).index();
      const s = {
        file,
        text: sent.out(),
        tokens: tokens.out(its.value),
        types: tokens.out(its.type),
        pos: tokens.out(its.pos),
        ner: new Array(tokens.length()).fill('O'),
        entityTypes: [],
      };
      sent.entities().each((e) => {
        const type = e.out(its.type);
        s.entityTypes.push(type);
        const label = NER_MAP[type];
        if (!label) return; // email/url/... never survive rejectReason anyway
        e.tokens().each((t) => { s.ner[t.index() - first] = label; });
      });
      for (const p of s.pos) if (!UPOS.includes(p)) throw new Error(`wink emitted unknown POS tag ${p} in "${s.text}"`);
      const reason = rejectReason(s);
      const key = s.text.toLowerCase();
      if (reason) rejected[reason] = (rejected[reason] || 0) + 1;
      else if (seen.has(key)) rejected.duplicate = (rejected.duplicate || 0) + 1;
      else {
        seen.add(key);
        kept.push(s);
        for (const t of s.entityTypes) entityCounts[t] = (entityCounts[t] || 0) + 1;
      }
    });
  }
  return { kept, rejected, entityCounts };
}

function buildVocab(train) {
  const freq = new Map();
  for (const s of train) for (const t of s.tokens) { const w = t.toLowerCase(); freq.set(w, (freq.get(w) || 0) + 1); }
  const words = [...freq.entries()]
    .filter(([, c]) => c >= VOCAB_MIN_FREQ)
    .sort((a, b) => b[1] - a[1] || byString(a[0], b[0]))
    .slice(0, VOCAB_MAX)
    .map(([w]) => w);
  return [PAD, UNK, ...words];
}

function encode(s, ids) {
  const n = s.tokens.length;
  return {
    input_ids: s.tokens.map((t) => ids.get(t.toLowerCase()) ?? 1),
    attention_mask: new Array(n).fill(1),
    token_type_ids: new Array(n).fill(0),
    pos: s.pos.map((p) => UPOS.indexOf(p)),
    ner: s.ner.map((l) => NER.indexOf(l)),
    text: s.text,
  };
}

function tagCounts(rows, tagNames, key) {
  const counts = new Array(tagNames.length).fill(0);
  let total = 0;
  for (const r of rows) for (const id of r[key]) { counts[id]++; total++; }
  return counts.map((c, i) => ({ tag: tagNames[i], count: c, pct: (100 * c) / total }));
}

function lengthStats(rows) {
  const lens = rows.map((r) => r.input_ids.length).sort((a, b) => a - b);
  const sum = lens.reduce((a, b) => a + b, 0);
  return { sentences: lens.length, tokens: sum, min: lens[0], median: lens[lens.length >> 1], mean: sum / lens.length, max: lens[lens.length - 1] };
}

function oovRate(rows) {
  let unk = 0, total = 0;
  for (const r of rows) for (const id of r.input_ids) { total++; if (id === 1) unk++; }
  return (100 * unk) / total;
}

function distributionTable(splits, tagNames, key) {
  const stats = Object.fromEntries(Object.entries(splits).map(([n, rows]) => [n, tagCounts(rows, tagNames, key)]));
  const names = Object.keys(splits);
  const head = `| id | tag | ${names.map((n) => `${n} count | ${n} %`).join(' | ')} |`;
  const rule = `|---|---|${names.map(() => '---:|---:').join('|')}|`;
  const body = tagNames.map((tag, i) => `| ${i} | ${tag} | ${names.map((n) => `${stats[n][i].count} | ${stats[n][i].pct.toFixed(2)}`).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

/** Where the text came from, as the system reports it (recorded, not assumed). */
function sourcePackages() {
  const version = (pkg) => {
    try { return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }); } catch { return 'unknown (dpkg-query failed)'; }
  };
  let os = 'unknown OS';
  try { os = /^PRETTY_NAME="?([^"\n]*)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))[1]; } catch { /* keep default */ }
  return { fortunes: version('fortunes'), fortunesMin: version('fortunes-min'), os };
}

function readme({ splits, vocab, files, rejected, entityCounts, nKept, nCandidates, nFortunes, sizes }) {
  const pkg = (name) => require(`${name}/package.json`).version;
  const src = sourcePackages();
  const lengthRows = Object.entries(splits).map(([n, rows]) => {
    const l = lengthStats(rows);
    return `| ${n} | ${l.sentences} | ${l.tokens} | ${l.min} | ${l.median} | ${l.mean.toFixed(2)} | ${l.max} | ${oovRate(rows).toFixed(2)} | ${sizes[n]} |`;
  });
  const rejectedRows = Object.entries(rejected).sort((a, b) => b[1] - a[1] || byString(a[0], b[0])).map(([r, c]) => `| ${r} | ${c} |`);
  return `# Shipped data set: silver POS and entity tags on fortune-cookie sentences

Generated by \`scripts/make_data.js\`; do not edit these files by hand.

## Source

English sentences from the Debian packages **fortunes** ${src.fortunes} and **fortunes-min**
${src.fortunesMin} (source package \`fortune-mod\`, installed on ${src.os}), files under
\`/usr/share/games/fortunes/\`. Each fortune is a short quotation, joke or aphorism.

- Files used (${files.length}): ${files.map((f) => `\`${f}\``).join(', ')}.
- Files left out: ${Object.entries(EXCLUDED_FILES).map(([f, why]) => `\`${f}\` (${why})`).join(', ')}.
  The offensive collection \`fortunes-off\` is not installed and not used.
- **Licence:** \`/usr/share/doc/fortunes/copyright\` states that the package "falls under the
  BSD copyright" (4-clause BSD of the Regents of the University of California with clause 3
  deleted, i.e. 3-clause BSD), and names the \`cookie\` file as coming from Karl Lehenbauer's
  postings to alt.sources. The package is in Debian \`main\`. Many fortunes are quotations of
  published authors; the attributions ("-- Author") are removed by this script, so consult the
  original files for who said what.

## Processing

1. Split every file at \`%\` lines (${nFortunes} fortunes kept). Cut each fortune at its
   attribution line (\`-- ...\`); drop fortunes that are chat logs or dialogue scripts
   (lines starting \`<nick>\`, \`* nick\` or \`Speaker: \`); join the lines.
2. Sentence-split and tokenize with wink-nlp (${nCandidates} candidate sentences).
3. Keep sentences of ${MIN_TOKENS}–${MAX_TOKENS} tokens (punctuation tokens count), ASCII only,
   no markup characters, starting with a capital letter (optionally after a quote) and ending
   with \`.\`, \`!\` or \`?\`, with at least ${MIN_WORD_SHARE * 100}% alphabetic word tokens, no e-mail / URL /
   emoticon / hashtag tokens, not mostly upper case. Dedupe on the lower-cased sentence text,
   keeping the first occurrence (files in sorted order).
4. Shuffle with mulberry32 (seed ${SEED}); the first ${TEST_SIZE} sentences are \`test\`, the next
   ${DEV_SIZE} \`dev\`, then up to ${TRAIN_MAX} \`train\`; the other ${nKept - TEST_SIZE - DEV_SIZE - splits.train.length} of the ${nKept}
   deduplicated sentences are not used. Splits are disjoint by (lower-cased) sentence.

Sentences dropped:

| reason | sentences |
|---|---:|
${rejectedRows.join('\n')}

## Tagger

wink-nlp ${pkg('wink-nlp')} with wink-eng-lite-web-model ${pkg('wink-eng-lite-web-model')}. Labels are
**silver** (the tagger's output, not checked by hand), one per wink token.

- \`pos\`: Universal POS tags (UPOS, 17 tags, UD order), id = index in \`labels.json\`.
- \`ner\`: **IO encoding** (no B-/I- prefixes): each token inside an entity gets the entity's type,
  every other token \`O\`. wink's lite model has no PERSON / ORG / LOC types; it finds
  DATE, TIME, DURATION, CARDINAL, ORDINAL, MONEY, PERCENT (plus e-mail / URL / emoticon /
  hashtag / mention, which the sentence filter removes). Mapping: ${Object.entries(NER_MAP).map(([k, v]) => `${k}→${v}`).join(', ')}
  (MONEY and PERCENT are too rare on their own, so they are merged into QUANTITY).
  Entities wink found in the ${nKept} deduplicated sentences (before the split and the train cap), by
  raw type, counting entities, not tokens: ${Object.entries(entityCounts).sort((a, b) => b[1] - a[1] || byString(a[0], b[0])).map(([t, c]) => `${t} ${c}`).join(', ')}.
- Note for users of the \`ner\` head: about 98% of tokens are \`O\`, so token accuracy on \`ner\` is
  dominated by the majority class; compare against the majority baseline, or look at entity tokens.

## Files

- \`vocab.txt\`: one token per line, line index = id. \`[PAD]\` = 0, \`[UNK]\` = 1, then lower-cased
  tokens (words and punctuation) with frequency ≥ ${VOCAB_MIN_FREQ} in \`train\`, by descending frequency
  (ties in code-point order), at most ${VOCAB_MAX}. **${vocab.length} entries.** Everything else is \`[UNK]\`.
- \`labels.json\`: \`{ "pos": [...], "ner": [...] }\`, tag names by id.
- \`train.jsonl\`, \`dev.jsonl\`, \`test.jsonl\`: one sentence per line,
  \`{"input_ids":[...],"attention_mask":[1,...],"token_type_ids":[0,...],"pos":[...],"ner":[...],"text":"..."}\`,
  no padding, all arrays of equal length, no [CLS]/[SEP].

## Sizes, lengths (tokens per sentence) and OOV rate

| split | sentences | tokens | min | median | mean | max | OOV % ([UNK] tokens) | bytes |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${lengthRows.join('\n')}

## \`pos\` distribution (tokens)

${distributionTable(splits, UPOS, 'pos')}

## \`ner\` distribution (tokens)

${distributionTable(splits, NER, 'ner')}

## Regenerate

\`\`\`
apt-get update && apt-get install -y fortunes fortunes-min
node scripts/make_data.js            # writes data/; byte-identical on every run
\`\`\`
`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.src)) throw new Error(`${opts.src} not found: apt-get install -y fortunes fortunes-min`);
  const nlp = winkNLP(winkModel);
  const files = fortuneFiles(opts.src);
  const fortunes = readFortunes(opts.src);
  const { kept, rejected, entityCounts } = tagSentences(nlp, fortunes);
  const nCandidates = kept.length + Object.values(rejected).reduce((a, b) => a + b, 0);

  const shuffled = shuffle(kept, SEED);
  if (shuffled.length < TEST_SIZE + DEV_SIZE + 1000) throw new Error(`only ${shuffled.length} sentences survived the filter`);
  const raw = {
    train: shuffled.slice(TEST_SIZE + DEV_SIZE, TEST_SIZE + DEV_SIZE + TRAIN_MAX),
    dev: shuffled.slice(TEST_SIZE, TEST_SIZE + DEV_SIZE),
    test: shuffled.slice(0, TEST_SIZE),
  };
  const vocab = buildVocab(raw.train);
  const ids = new Map(vocab.map((w, i) => [w, i]));
  const splits = Object.fromEntries(Object.entries(raw).map(([n, rows]) => [n, rows.map((s) => encode(s, ids))]));

  fs.mkdirSync(opts.out, { recursive: true });
  const sizes = {};
  for (const [n, rows] of Object.entries(splits)) {
    const body = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    fs.writeFileSync(path.join(opts.out, `${n}.jsonl`), body);
    sizes[n] = Buffer.byteLength(body);
  }
  fs.writeFileSync(path.join(opts.out, 'vocab.txt'), vocab.join('\n') + '\n');
  fs.writeFileSync(path.join(opts.out, 'labels.json'), JSON.stringify({ pos: UPOS, ner: NER }, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.out, 'README.md'),
    readme({ splits, vocab, files, rejected, entityCounts, nKept: kept.length, nCandidates, nFortunes: fortunes.length, sizes }));
  const counts = Object.entries(splits).map(([n, rows]) => `${n} ${rows.length}`).join(', ');
  process.stdout.write(`wrote ${opts.out}: ${counts} sentences (of ${kept.length} kept), vocab ${vocab.length}\n`);
}

if (require.main === module) {
  try { main(); } catch (err) { process.stderr.write(`make_data: ${err.message}\n`); process.exit(1); }
}
