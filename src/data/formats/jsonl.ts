// JSON Lines with words: `{"words": [...], "pos": [...], "topic": "sports"}`.
// A label key holds an array with one value per word (null = no label) or a
// string (a sentence label). Label values are strings (numbers are read as their
// decimal text). Ids-only JSONL (`input_ids`) is already prepared: data/jsonl.ts.
import { ColumnRequest, fail, LabelValues, Sentence, splitLines } from './types';

function labelValue(file: string, line: number, where: string, x: unknown): string | null {
  if (x === null || typeof x === 'string') return x;
  if (typeof x === 'number' && Number.isFinite(x)) return String(x);
  return fail(file, line, `label '${where}' is ${JSON.stringify(x)}; expected a string, a number or null`);
}

export function parseWordsJsonl(text: string, file: string, columns: ColumnRequest[]): Sentence[] {
  const out: Sentence[] = [];
  splitLines(text).forEach((raw, k) => {
    const line = k + 1;
    if (!raw.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch (e) {
      fail(file, line, `${out.length === 0 ? 'not JSON Lines: ' : ''}malformed JSON (${(e as Error).message})`);
    }
    if (!rec || typeof rec !== 'object' || Array.isArray(rec)) fail(file, line, 'each line must be a JSON object');
    const obj = rec as Record<string, unknown>;
    if (!('words' in obj)) {
      fail(file, line, 'input_ids' in obj ? "this is ids JSONL (input_ids), already prepared: give it to train/probe without --tokenizer" : "missing key 'words'");
    }
    const words = obj.words;
    if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string' && w !== '')) fail(file, line, "'words' must be a non-empty array of non-empty strings");
    const labels: Record<string, LabelValues> = {};
    for (const c of columns) {
      if (!(c.column in obj)) fail(file, line, `missing key '${c.column}' (--label ${c.name}=${c.column})`);
      const v = obj[c.column];
      if (Array.isArray(v)) {
        if (v.length !== words.length) fail(file, line, `'${c.column}' has ${v.length} labels but 'words' has ${words.length}`);
        labels[c.name] = v.map((x, i) => labelValue(file, line, `${c.column}[${i}]`, x));
      } else {
        labels[c.name] = labelValue(file, line, c.column, v);
      }
    }
    out.push({ words: words as string[], labels, line });
  });
  return out;
}
