// Plain text, one sentence or document per line (for MLM): no labels. Each line
// is encoded as text; `words` is its whitespace split, for counting.
import { GrlError } from '../../onnx/errors';
import { ColumnRequest, Sentence, splitLines } from './types';

export function parseText(text: string, _file: string, columns: ColumnRequest[]): Sentence[] {
  if (columns.length) throw new GrlError(`--label ${columns[0].name}=${columns[0].column}: plain text has no label columns`);
  const out: Sentence[] = [];
  splitLines(text).forEach((raw, k) => {
    const t = raw.trim();
    if (t) out.push({ words: t.split(/\s+/), labels: {}, line: k + 1, text: t });
  });
  return out;
}
