/**
 * Checks the shipped data set (data/, built by scripts/make_data.js) against the
 * contract the trainer and the amnesic experiment rely on: parsable JSONL in the
 * trainer's format, ids inside the vocabulary and label sets, disjoint splits.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const DATA = path.join(__dirname, '..', 'data');
const SPLITS = ['train', 'dev', 'test'] as const;
const FORTUNES = '/usr/share/games/fortunes';

interface Example {
  input_ids: number[];
  attention_mask: number[];
  token_type_ids: number[];
  pos: number[];
  ner: number[];
  text: string;
}

function readSplit(name: string): Example[] {
  const body = fs.readFileSync(path.join(DATA, `${name}.jsonl`), 'utf8');
  expect(body.endsWith('\n')).toBe(true);
  return body.slice(0, -1).split('\n').map((line, i) => {
    try {
      return JSON.parse(line) as Example;
    } catch (err) {
      throw new Error(`${name}.jsonl:${i + 1}: ${(err as Error).message}`);
    }
  });
}

const vocab = fs.readFileSync(path.join(DATA, 'vocab.txt'), 'utf8').replace(/\n$/, '').split('\n');
const labels = JSON.parse(fs.readFileSync(path.join(DATA, 'labels.json'), 'utf8')) as { pos: string[]; ner: string[] };
const splits = Object.fromEntries(SPLITS.map((s) => [s, readSplit(s)])) as Record<(typeof SPLITS)[number], Example[]>;

describe('shipped data set', () => {
  test('vocab has [PAD]=0, [UNK]=1, unique lower-case entries', () => {
    expect(vocab[0]).toBe('[PAD]');
    expect(vocab[1]).toBe('[UNK]');
    expect(new Set(vocab).size).toBe(vocab.length);
    for (const w of vocab.slice(2)) expect(w).toBe(w.toLowerCase());
    expect(vocab.length).toBeGreaterThan(2000);
    expect(vocab.length).toBeLessThanOrEqual(12002);
  });

  test('labels.json has the 17 UPOS tags and O first for ner', () => {
    expect(labels.pos).toEqual(['ADJ', 'ADP', 'ADV', 'AUX', 'CCONJ', 'DET', 'INTJ', 'NOUN', 'NUM', 'PART',
      'PRON', 'PROPN', 'PUNCT', 'SCONJ', 'SYM', 'VERB', 'X']);
    expect(labels.ner[0]).toBe('O');
    expect(new Set(labels.ner).size).toBe(labels.ner.length);
  });

  test('split sizes are in the planned range', () => {
    expect(splits.train.length).toBeGreaterThanOrEqual(8000);
    expect(splits.train.length).toBeLessThanOrEqual(12000);
    expect(splits.dev.length).toBe(1500);
    expect(splits.test.length).toBe(1500);
  });

  test.each(SPLITS)('%s: every line has the trainer format, equal lengths and in-range ids', (name) => {
    const keys = ['input_ids', 'attention_mask', 'token_type_ids', 'pos', 'ner', 'text'];
    const inRange = (xs: number[], hi: number, lo = 0) => xs.every((x) => Number.isInteger(x) && x >= lo && x < hi);
    const problems: string[] = [];
    splits[name].forEach((ex, i) => {
      const bad = (what: string) => problems.push(`${name}.jsonl:${i + 1}: ${what}`);
      const n = ex.input_ids.length;
      if (Object.keys(ex).join() !== keys.join()) bad(`keys ${Object.keys(ex).join()}`);
      if (n < 5 || n > 40) bad(`length ${n}`);
      for (const key of ['attention_mask', 'token_type_ids', 'pos', 'ner'] as const) {
        if (ex[key].length !== n) bad(`${key} has ${ex[key].length} entries, input_ids ${n}`);
      }
      // id 0 is padding only: a real token is never [PAD].
      if (!inRange(ex.input_ids, vocab.length, 1)) bad('input_ids outside [1, vocab)');
      if (!ex.attention_mask.every((m) => m === 1)) bad('attention_mask not all 1');
      if (!ex.token_type_ids.every((t) => t === 0)) bad('token_type_ids not all 0');
      if (!inRange(ex.pos, labels.pos.length)) bad('pos label out of range');
      if (!inRange(ex.ner, labels.ner.length)) bad('ner label out of range');
      if (typeof ex.text !== 'string' || ex.text.length === 0) bad('no text');
    });
    expect(problems).toEqual([]);
  });

  test('every label in labels.json is used in train, and train uses no other', () => {
    for (const head of ['pos', 'ner'] as const) {
      const used = new Set(splits.train.flatMap((ex) => ex[head]));
      expect([head, [...used].sort((a, b) => a - b)]).toEqual([head, labels[head].map((_, i) => i)]);
    }
  });

  test('train tokens are in the vocabulary unless rare; dev and test have some [UNK]', () => {
    const unkRate = (rows: Example[]) => {
      const ids = rows.flatMap((ex) => ex.input_ids);
      return ids.filter((id) => id === 1).length / ids.length;
    };
    // [UNK] in train are exactly the words seen once there, so they stay a small share.
    expect(unkRate(splits.train)).toBeGreaterThan(0);
    expect(unkRate(splits.train)).toBeLessThan(0.1);
    expect(unkRate(splits.dev)).toBeGreaterThan(unkRate(splits.train));
    expect(unkRate(splits.test)).toBeGreaterThan(unkRate(splits.train));
  });

  test('splits are disjoint by sentence and free of duplicates', () => {
    const seen = new Map<string, string>();
    const repeats: string[] = [];
    for (const name of SPLITS) {
      for (const ex of splits[name]) {
        const key = ex.text.toLowerCase();
        if (seen.has(key)) repeats.push(`${seen.get(key)} and ${name}: ${ex.text}`);
        seen.set(key, name);
      }
    }
    expect(repeats).toEqual([]);
    expect(seen.size).toBe(splits.train.length + splits.dev.length + splits.test.length);
  });

  test('token ids agree with the text: the vocab word of each known token occurs in it', () => {
    for (const ex of splits.dev.slice(0, 300)) {
      const lower = ex.text.toLowerCase();
      for (const id of ex.input_ids) {
        if (id === 1) continue;
        // Tokens are wink's its.value (surface spelling, unlike its.normal), so each is a substring.
        expect([ex.text, vocab[id], lower.includes(vocab[id])]).toEqual([ex.text, vocab[id], true]);
      }
    }
  });

  (fs.existsSync(FORTUNES) ? test : test.skip)('scripts/make_data.js regenerates byte-identical files', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-data-'));
    try {
      execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'make_data.js'), '--out', out], { stdio: 'pipe' });
      for (const f of ['vocab.txt', 'labels.json', 'train.jsonl', 'dev.jsonl', 'test.jsonl', 'README.md']) {
        const same = fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(DATA, f)));
        expect([f, same]).toEqual([f, true]);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
