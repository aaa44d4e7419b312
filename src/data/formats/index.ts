// Corpus formats: reading a file, telling its format, and dispatching to the
// one module per format. Every error names the file (and line).
import * as fs from 'fs';
import * as path from 'path';
import { GrlError } from '../../onnx/errors';
import { parseConll } from './conll';
import { parseConllu } from './conllu';
import { parseWordsJsonl } from './jsonl';
import { parseText } from './text';
import { ColumnRequest, FORMATS, FormatName, Sentence, splitLines } from './types';
import { isWordTagToken, parseWordTag } from './wordtag';

export type { Sentence, ColumnRequest, FormatName, LabelValues } from './types';
export { FORMATS } from './types';

const PARSERS: Record<FormatName, (text: string, file: string, columns: ColumnRequest[]) => Sentence[]> = {
  conllu: parseConllu,
  conll: parseConll,
  wordtag: parseWordTag,
  jsonl: parseWordsJsonl,
  text: parseText,
};

const NAMES: Record<FormatName, string> = { conllu: 'CoNLL-U', conll: 'CoNLL (IOB columns)', wordtag: 'word/TAG', jsonl: 'JSON Lines', text: 'plain text' };

/** The format the first data line looks like, with its line number; undefined when it is unclear. */
export function sniffFormat(text: string): { format: FormatName; line: number } | undefined {
  const lines = splitLines(text);
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k];
    if (!raw.trim()) continue;
    const line = k + 1;
    if (raw.startsWith('#') || /^\d+([-.]\d+)?\t/.test(raw)) return { format: 'conllu', line };
    if (raw.trimStart().startsWith('{')) return { format: 'jsonl', line };
    if (raw.startsWith('-DOCSTART-')) return { format: 'conll', line };
    const tokens = raw.trim().split(/\s+/);
    if (tokens.every(isWordTagToken)) return { format: 'wordtag', line };
    if (tokens.length >= 2) return { format: 'conll', line };
    return undefined;
  }
  return undefined;
}

/** The format of `file`: given, from the extension (.conllu, .jsonl), or from its first line. */
export function detectFormat(file: string, text: string, given?: FormatName): FormatName {
  const sniffed = sniffFormat(text);
  if (given) {
    if (given !== 'text' && sniffed && sniffed.format !== given) {
      throw new GrlError(`${file}:${sniffed.line}: not ${NAMES[given]}: this looks like ${NAMES[sniffed.format]} (--format ${sniffed.format})`, { file });
    }
    return given;
  }
  const ext = path.extname(file).toLowerCase();
  if (ext === '.conllu') return 'conllu';
  if (ext === '.jsonl') return 'jsonl';
  if (sniffed) return sniffed.format;
  throw new GrlError(`${file}: cannot tell the corpus format; give --format (${FORMATS.join(', ')})`, { file });
}

export function readCorpusText(file: string): string {
  let text: string;
  try {
    // A UTF-8 byte-order mark (Windows editors write one) is not part of the first line.
    text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (e) {
    throw new GrlError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`, { file });
  }
  if (!text.trim()) throw new GrlError(`${file}: empty file`, { file });
  return text;
}

/** Parse a corpus file into sentences with the label columns asked for. */
export function readCorpus(file: string, columns: ColumnRequest[], format?: FormatName): { format: FormatName; sentences: Sentence[] } {
  const text = readCorpusText(file);
  const fmt = detectFormat(file, text, format);
  const sentences = PARSERS[fmt](text, file, columns);
  if (!sentences.length) throw new GrlError(`${file}: no sentences (only comments or blank lines)`, { file });
  return { format: fmt, sentences };
}
