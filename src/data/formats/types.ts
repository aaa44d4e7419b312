// Corpus formats: what every format module returns. A format turns a file into
// sentences of words plus the label columns asked for; it knows nothing about
// tokenizers or label ids (src/data/prepare.ts does that).
import { GrlError } from '../../onnx/errors';

/** A word-level label column (one value per word, null = no value) or a sentence-level one. */
export type LabelValues = (string | null)[] | string | null;

export interface Sentence {
  words: string[];
  /** Keyed by the label name given in `--label NAME=COLUMN`. */
  labels: Record<string, LabelValues>;
  /** Line of the sentence's first word (1-based). */
  line: number;
  /** Line of each word, when the format has one line per word. */
  wordLines?: number[];
  /** The raw line (plain text format): encoded as text, not as words. */
  text?: string;
}

/** `--label NAME=COLUMN`: label `name` comes from the format's column `column`. */
export interface ColumnRequest {
  name: string;
  column: string;
}

export const FORMATS = ['conllu', 'conll', 'wordtag', 'jsonl', 'text'] as const;
export type FormatName = (typeof FORMATS)[number];

export function fail(file: string, line: number, msg: string): never {
  throw new GrlError(`${file}:${line}: ${msg}`, { file });
}

/** Lines without their line ending (\n or \r\n). */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
