// CoNLL-U (Universal Dependencies), read exactly: comment lines (`# key = value`,
// kept per sentence), ten tab-separated columns, multiword token ranges (`3-4`:
// the surface form; the syntactic words 3 and 4 carry the labels and are what the
// tokenizer sees), empty nodes (`8.1`, skipped: they are not words), `_` meaning
// "no value", blank lines between sentences and no blank line needed at the end.
// Label columns: form, lemma, upos, xpos, deprel, head (as the offset to the head
// word, `+2` / `-1`, or `root`), feats.<Feature>, misc.<Key>, and sentence labels
// from comments: `label` (`# label = ...`) or comment.<key>.
import { GrlError } from '../../onnx/errors';
import { ColumnRequest, fail, LabelValues, Sentence, splitLines } from './types';

const PLAIN: Record<string, number> = { form: 1, lemma: 2, upos: 3, xpos: 4, deprel: 7 };

interface Word {
  id: number;
  fields: string[];
  line: number;
}

/** A multiword token `3-4 vámonos`: kept for callers, not a word for labels. */
export interface MultiwordToken {
  from: number;
  to: number;
  form: string;
  line: number;
}

export interface ConlluSentence {
  words: Word[];
  comments: Record<string, string>;
  multiword: MultiwordToken[];
  line: number;
}

/** Split `Case=Nom|Number=Sing` into a map; `_` is no features. */
function parseKeyValues(file: string, line: number, what: string, s: string, strict: boolean): Map<string, string> {
  const out = new Map<string, string>();
  if (s === '_') return out;
  for (const part of s.split('|')) {
    const k = part.indexOf('=');
    if (k <= 0 || k === part.length - 1) {
      if (!strict) continue; // MISC may hold free-form entries
      fail(file, line, `malformed ${what} '${part}' (expected Name=Value)`);
    }
    out.set(part.slice(0, k), part.slice(k + 1));
  }
  return out;
}

/** Every sentence of a CoNLL-U file, with its comments and multiword tokens. */
export function readConllu(text: string, file: string): ConlluSentence[] {
  const lines = splitLines(text);
  const out: ConlluSentence[] = [];
  let cur: ConlluSentence = { words: [], comments: {}, multiword: [], line: 0 };
  let rangeEnd = 0;
  let seenData = false;
  const flush = () => {
    if (cur.words.length) out.push(cur);
    else if (cur.multiword.length) fail(file, cur.multiword[0].line, 'a sentence with no word lines');
    cur = { words: [], comments: {}, multiword: [], line: 0 };
    rangeEnd = 0;
  };
  for (let k = 0; k < lines.length; k++) {
    const line = k + 1;
    const raw = lines[k];
    if (raw.trim() === '') {
      if (raw !== '') fail(file, line, 'a blank line between sentences must be empty (it has whitespace)');
      if (rangeEnd > cur.words.length) fail(file, line, `multiword token ends at word ${rangeEnd}, but the sentence ends at word ${cur.words.length}`);
      flush();
      continue;
    }
    if (raw.startsWith('#')) {
      if (cur.words.length || cur.multiword.length) fail(file, line, 'comment line inside a sentence (comments go before its first word line)');
      const m = /^#\s*([^=]+?)\s*=\s?(.*)$/.exec(raw);
      if (m) cur.comments[m[1]] = m[2];
      continue;
    }
    const f = raw.split('\t');
    if (f.length !== 10) {
      const hint = !seenData ? `not CoNLL-U: ` : '';
      fail(file, line, `${hint}expected 10 tab-separated columns, found ${f.length}`);
    }
    seenData = true;
    const id = f[0];
    if (/^\d+\.\d+$/.test(id)) continue; // empty node: not a word
    const range = /^(\d+)-(\d+)$/.exec(id);
    const expected = cur.words.length + 1;
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      if (from !== expected || to <= from) fail(file, line, `multiword token '${id}' must span words ${expected}-N with N > ${expected}`);
      cur.multiword.push({ from, to, form: f[1], line });
      rangeEnd = to;
      continue;
    }
    if (!/^\d+$/.test(id)) fail(file, line, `malformed ID '${id}' (expected N, N-M or N.M)`);
    if (Number(id) !== expected) fail(file, line, `word ID ${id} out of order (expected ${expected})`);
    if (f[1] === '') fail(file, line, 'empty FORM');
    if (f[6] !== '_' && !/^\d+$/.test(f[6])) fail(file, line, `HEAD '${f[6]}' is not a word number`);
    if (!cur.words.length) cur.line = line;
    cur.words.push({ id: Number(id), fields: f, line });
  }
  if (rangeEnd > cur.words.length) fail(file, lines.length, `multiword token ends at word ${rangeEnd}, but the sentence ends at word ${cur.words.length}`);
  flush();
  return out;
}

type Extract = (s: ConlluSentence, file: string) => LabelValues;

function extractor(req: ColumnRequest): Extract {
  const col = req.column;
  const orNull = (v: string) => (v === '_' ? null : v);
  if (col in PLAIN) return (s) => s.words.map((w) => orNull(w.fields[PLAIN[col]]));
  if (col === 'head') {
    return (s) => s.words.map((w) => {
      if (w.fields[6] === '_') return null;
      const head = Number(w.fields[6]);
      if (head === 0) return 'root';
      const d = head - w.id;
      return d > 0 ? `+${d}` : String(d);
    });
  }
  const dotted = /^(feats|misc)\.(.+)$/.exec(col);
  if (dotted) {
    const at = dotted[1] === 'feats' ? 5 : 9;
    return (s, file) => s.words.map((w) => parseKeyValues(file, w.line, dotted[1].toUpperCase(), w.fields[at], at === 5).get(dotted[2]) ?? null);
  }
  if (col === 'label' || col.startsWith('comment.')) {
    const key = col === 'label' ? 'label' : col.slice('comment.'.length);
    return (s) => s.comments[key] ?? null;
  }
  throw new GrlError(`--label ${req.name}=${col}: unknown CoNLL-U column '${col}' (use form, lemma, upos, xpos, deprel, head, feats.<Feature>, misc.<Key>, label or comment.<key>)`);
}

export function parseConllu(text: string, file: string, columns: ColumnRequest[]): Sentence[] {
  const extract = columns.map((c) => [c.name, extractor(c)] as const);
  return readConllu(text, file).map((s) => ({
    words: s.words.map((w) => w.fields[1]),
    labels: Object.fromEntries(extract.map(([name, ex]) => [name, ex(s, file)])),
    line: s.line,
    wordLines: s.words.map((w) => w.line),
  }));
}
