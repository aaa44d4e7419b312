// Label vocabularies: label name → the list of its classes, index = class id
// (the `OUT.labels.json` that `data prepare` writes, the shape of HF's id2label).
// Built from a training corpus in sorted order (the default: it does not depend on
// the order of the sentences, so two runs over shuffled copies agree) or in
// first-seen order. Dev and test data use the training vocabulary.
import * as fs from 'fs';
import { GrlError } from '../onnx/errors';
import type { Sentence } from './formats';

export type LabelVocab = Record<string, string[]>;
export type LabelOrder = 'sorted' | 'first-seen';
export const LABEL_ORDERS: readonly LabelOrder[] = ['sorted', 'first-seen'];

/** Every value of label `name` in the sentences, word and sentence labels alike; null is no value. */
function* values(sentences: Sentence[], name: string): Generator<string> {
  for (const s of sentences) {
    const v = s.labels[name];
    if (typeof v === 'string') yield v;
    else if (Array.isArray(v)) for (const x of v) if (x !== null) yield x;
  }
}

/**
 * Sorted order; labels that are all integers (class ids in a JSONL file) sort by value, so
 * 0..10 keep their ids instead of becoming "0", "1", "10", "2", ...
 */
function sortLabels(list: string[]): string[] {
  if (list.every((l) => /^-?\d+$/.test(l))) return list.sort((a, b) => Number(a) - Number(b));
  return list.sort();
}

export function buildLabelVocab(sentences: Sentence[], names: string[], order: LabelOrder, file: string): LabelVocab {
  const vocab: LabelVocab = {};
  for (const name of names) {
    const seen = new Set<string>(values(sentences, name));
    if (!seen.size) throw new GrlError(`${file}: label '${name}' has no value in any sentence`, { file });
    const list = [...seen];
    vocab[name] = order === 'sorted' ? sortLabels(list) : list;
  }
  return vocab;
}

/** Read a labels.json written by `data prepare` (or by hand): { "<label>": ["TAG0", ...] }. */
export function readLabelVocab(file: string): LabelVocab {
  let obj: unknown;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new GrlError(`${file}: ${err.code ? `cannot read (${err.code})` : `not JSON (${err.message})`}`, { file });
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new GrlError(`${file}: expected a label vocabulary { "<label>": ["TAG0", "TAG1", ...] }`, { file });
  for (const [k, v] of Object.entries(obj)) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new GrlError(`${file}: '${k}' must be an array of label strings`, { file });
    if (new Set(v).size !== v.length) throw new GrlError(`${file}: '${k}' lists a label twice`, { file });
  }
  return obj as LabelVocab;
}

/** The vocabulary must have every label asked for. */
export function requireLabels(vocab: LabelVocab, names: string[], source: string): LabelVocab {
  for (const name of names) {
    if (!vocab[name]) throw new GrlError(`${source}: no label '${name}' in the training label vocabulary (it has ${Object.keys(vocab).join(', ') || 'none'})`, { file: source });
  }
  return vocab;
}
