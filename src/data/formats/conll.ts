// CoNLL-2003 / IOB: one word per line in whitespace-separated columns (word
// first), blank lines between sentences, `-DOCSTART-` lines between documents.
// Columns are numbered from 0 (the word), so CoNLL-2003's NER tag is `ner=3`;
// a negative number counts from the end (`-1` = the last column). Tags are
// opaque labels, so BIO, IOB1 and IOBES all work; a column that holds IOB-style
// tags (B-X, I-X, E-X, S-X) must hold only those and `O`.
import { GrlError } from '../../onnx/errors';
import { ColumnRequest, fail, Sentence, splitLines } from './types';

const IOB_TAG = /^[BIES]-./;

function columnIndex(req: ColumnRequest): number {
  if (!/^-?\d+$/.test(req.column)) throw new GrlError(`--label ${req.name}=${req.column}: CoNLL columns are numbers counted from 0 (the word), e.g. ner=3; -1 is the last column`);
  return Number(req.column);
}

export function parseConll(text: string, file: string, columns: ColumnRequest[]): Sentence[] {
  const want = columns.map(columnIndex);
  const lines = splitLines(text);
  const out: Sentence[] = [];
  let cur: Sentence | null = null;
  let width = 0;
  let widthLine = 0;
  for (let k = 0; k < lines.length; k++) {
    const line = k + 1;
    const raw = lines[k].trim();
    if (!raw || raw.startsWith('-DOCSTART-')) {
      if (cur) out.push(cur);
      cur = null;
      continue;
    }
    const f = raw.split(/\s+/);
    if (!width) {
      if (f.length === 10 && /^\d+$/.test(f[0]) && lines[k].includes('\t')) fail(file, line, 'this looks like CoNLL-U (10 tab-separated columns), not CoNLL: use --format conllu');
      if (f.length < 2) fail(file, line, `not CoNLL: expected a word and at least one tag column, found ${f.length} column`);
      width = f.length;
      widthLine = line;
      want.forEach((c, i) => {
        if (c === 0 || c >= width || c < -width + 1) fail(file, line, `--label ${columns[i].name}=${columns[i].column}: the file has columns 0..${width - 1} (0 is the word)`);
      });
    } else if (f.length !== width) {
      fail(file, line, `${f.length} columns, but line ${widthLine} has ${width}`);
    }
    if (!cur) cur = { words: [], labels: Object.fromEntries(columns.map((c) => [c.name, [] as string[]])), line, wordLines: [] };
    cur.words.push(f[0]);
    cur.wordLines!.push(line);
    want.forEach((c, i) => (cur!.labels[columns[i].name] as string[]).push(f[c < 0 ? width + c : c]));
  }
  if (cur) out.push(cur);
  checkIob(out, file, columns);
  return out;
}

/** A column with any B-/I-/E-/S- tag must be all IOB-style tags or O. */
function checkIob(sentences: Sentence[], file: string, columns: ColumnRequest[]): void {
  for (const c of columns) {
    const isIob = sentences.some((s) => (s.labels[c.name] as string[]).some((t) => IOB_TAG.test(t)));
    if (!isIob) continue;
    for (const s of sentences) {
      (s.labels[c.name] as string[]).forEach((t, i) => {
        if (t !== 'O' && !IOB_TAG.test(t)) fail(file, s.wordLines![i], `malformed IOB tag '${t}' in column ${c.column} (expected O, B-X, I-X, E-X or S-X)`);
      });
    }
  }
}
