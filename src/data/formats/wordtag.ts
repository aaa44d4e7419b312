// word/TAG text (Penn Treebank style: `Pierre/NNP Vinken/NNP ,/,`): one
// sentence per line, tokens separated by whitespace, the tag after the last
// unescaped `/`. `\/` is a slash inside the word (`1\/2/CD` is the word `1/2`).
// The one label column is `tag` (or `1`).
import { GrlError } from '../../onnx/errors';
import { ColumnRequest, fail, Sentence, splitLines } from './types';

/** Index of the last `/` not escaped by a backslash, or -1. */
export function lastSlash(token: string): number {
  for (let i = token.length - 1; i >= 0; i--) {
    if (token[i] !== '/') continue;
    let bs = 0;
    for (let j = i - 1; j >= 0 && token[j] === '\\'; j--) bs++;
    if (bs % 2 === 0) return i;
  }
  return -1;
}

/** Whether a token is WORD/TAG: an unescaped slash with something on both sides (`\//SYM` too). */
export function isWordTagToken(token: string): boolean {
  const at = lastSlash(token);
  return at > 0 && at < token.length - 1;
}

export function parseWordTag(text: string, file: string, columns: ColumnRequest[]): Sentence[] {
  for (const c of columns) {
    if (c.column !== 'tag' && c.column !== '1') throw new GrlError(`--label ${c.name}=${c.column}: word/TAG files have one label column, 'tag'`);
  }
  const out: Sentence[] = [];
  splitLines(text).forEach((raw, k) => {
    const line = k + 1;
    if (!raw.trim()) return;
    const words: string[] = [];
    const tags: string[] = [];
    for (const token of raw.trim().split(/\s+/)) {
      const at = lastSlash(token);
      if (at < 0) fail(file, line, `${out.length === 0 && words.length === 0 ? 'not word/TAG: ' : ''}token '${token}' has no /TAG`);
      const word = token.slice(0, at).replace(/\\\//g, '/');
      const tag = token.slice(at + 1);
      if (!word || !tag) fail(file, line, `token '${token}' has an empty ${word ? 'tag' : 'word'}`);
      words.push(word);
      tags.push(tag);
    }
    out.push({ words, labels: Object.fromEntries(columns.map((c) => [c.name, tags])), line });
  });
  return out;
}
