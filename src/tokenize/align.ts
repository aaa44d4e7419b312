// Word → subword label alignment, as Hugging Face's token-classification recipe
// does it: the first subword of a word carries the word's label, the others get
// -100 (or the same label with `labelAllSubwords`), and special tokens get -100.
// Truncation keeps the post-processor's leading and closing special tokens and
// cuts subwords from the end of the sentence; a word with any subword cut counts
// as cut (its first subword, if kept, still carries its label).
import { GrlError } from '../onnx/errors';
import type { Encoding, TextTokenizer } from './tokenizer';

export const IGNORE_LABEL = -100;

export interface AlignOptions {
  /** Longest sequence, special tokens included. */
  maxLength?: number;
  /** Every subword gets the word's label, not just the first. */
  labelAllSubwords?: boolean;
}

export interface Aligned {
  ids: number[];
  /** One array per label column, one entry per token. */
  labels: number[][];
  /** Words with at least one subword cut by truncation (0 = not truncated). */
  truncatedWords: number;
  /** Words the tokenizer turned into no token at all (their label is lost). */
  emptyWords: number;
}

/**
 * Cut `enc` to `maxLength` tokens: the leading and trailing special runs stay, the body
 * loses tokens from its end. Returns the encoding itself when it fits.
 */
export function truncateEncoding(enc: Encoding, maxLength: number): Encoding {
  const n = enc.ids.length;
  if (n <= maxLength) return enc;
  let head = 0;
  while (head < n && enc.wordIds[head] === null && enc.specialTokensMask[head] === 1) head++;
  let tail = 0;
  while (tail < n - head && enc.wordIds[n - 1 - tail] === null && enc.specialTokensMask[n - 1 - tail] === 1) tail++;
  const keep = maxLength - head - tail;
  if (keep < 1) throw new GrlError(`max length ${maxLength} leaves no room for a token between the ${head + tail} special tokens`);
  const pick = <T>(a: T[]) => [...a.slice(0, head + keep), ...a.slice(n - tail)];
  return { ids: pick(enc.ids), wordIds: pick(enc.wordIds), specialTokensMask: pick(enc.specialTokensMask) };
}

/**
 * Encode `words` with special tokens and spread word-level labels (class ids, -100 = none)
 * over the subwords. `wordLabels[c][w]` is column c's label of word w.
 */
export function alignWords(tok: TextTokenizer, words: string[], wordLabels: ArrayLike<number>[], opts: AlignOptions = {}): Aligned {
  const full = tok.encodeWords(words);
  const enc = opts.maxLength !== undefined ? truncateEncoding(full, opts.maxLength) : full;
  const seen = new Uint8Array(words.length);
  let lastWord = -1;
  const labels = wordLabels.map(() => new Array<number>(enc.ids.length));
  for (let t = 0; t < enc.ids.length; t++) {
    const w = enc.wordIds[t];
    const first = w !== null && w !== lastWord;
    if (w !== null) {
      seen[w] = 1;
      lastWord = w;
    }
    for (let c = 0; c < wordLabels.length; c++) {
      labels[c][t] = w !== null && (first || opts.labelAllSubwords) ? wordLabels[c][w] : IGNORE_LABEL;
    }
  }
  let emptyWords = 0;
  let truncatedWords = 0;
  if (enc !== full) {
    const kept = new Uint32Array(words.length);
    const total = new Uint32Array(words.length);
    for (const w of full.wordIds) if (w !== null) total[w]++;
    for (const w of enc.wordIds) if (w !== null) kept[w]++;
    for (let w = 0; w < words.length; w++) {
      if (total[w] === 0) emptyWords++;
      else if (kept[w] < total[w]) truncatedWords++;
    }
  } else {
    for (let w = 0; w < words.length; w++) if (!seen[w]) emptyWords++;
  }
  return { ids: enc.ids, labels, truncatedWords, emptyWords };
}
