// Label names: `grl-onnx.id2label.<head>` metadata (a JSON array, index = class
// id, like Hugging Face's id2label), and the label files `heads add --labels`
// reads: one label per line (.txt), or a label vocabulary `{ "<head>": [...] }`
// (.json, as `data prepare` writes OUT.labels.json).
import * as fs from 'fs';
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { setMetadata } from './metadata';

export const ID2LABEL_PREFIX = 'grl-onnx.id2label.';

export function readLabelNames(model: Pick<Model, 'proto'>, head: string): string[] | undefined {
  const entry = (model.proto.metadata_props ?? []).find((m) => m.key === ID2LABEL_PREFIX + head);
  if (!entry) return undefined;
  try {
    const names = JSON.parse(entry.value ?? '') as unknown;
    return Array.isArray(names) && names.every((n) => typeof n === 'string') ? names : undefined;
  } catch {
    return undefined;
  }
}

/** A copy of the model with `names` stored for `head` (undefined removes them). */
export function withLabelNames(model: Model, head: string, names: string[] | undefined): Model {
  const proto = { ...model.proto, metadata_props: [...(model.proto.metadata_props ?? [])] };
  setMetadata(proto, ID2LABEL_PREFIX + head, names ? JSON.stringify(names) : undefined);
  return { ...model, proto };
}

/** The name of class `id` of `head`, or the id itself when the model has no names. */
export function labelName(names: string[] | undefined, id: number): string {
  return names?.[id] ?? String(id);
}

/**
 * Label names for `head` from FILE: a .json file is `{ "<head>": [names] }` (or a bare
 * array); any other file has one label per line (trailing empty lines ignored).
 */
export function loadLabelFile(file: string, head: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''); // else the first label would start with U+FEFF
  } catch (e) {
    throw new GrlError(`${file}: cannot read label file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file });
  }
  let names: unknown;
  if (file.endsWith('.json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new GrlError(`${file}: not valid JSON (${(e as Error).message})`, { file });
    }
    names = Array.isArray(parsed) ? parsed : (parsed as Record<string, unknown> | null)?.[head];
    if (names === undefined) {
      const keys = parsed && typeof parsed === 'object' ? Object.keys(parsed) : [];
      throw new GrlError(`${file}: no labels for head '${head}' (keys: ${keys.join(', ') || 'none'})`, { file });
    }
  } else {
    const lines = text.split(/\r?\n/);
    while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
    const blank = lines.findIndex((l) => l.trim() === '');
    if (blank >= 0) throw new GrlError(`${file}:${blank + 1}: empty label name`, { file });
    names = lines.map((l) => l.trim());
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
    throw new GrlError(`${file}: labels for head '${head}' must be a list of strings`, { file });
  }
  const seen = new Map<string, number>();
  names.forEach((n: string, i) => {
    if (seen.has(n)) throw new GrlError(`${file}: label '${n}' appears twice (ids ${seen.get(n)} and ${i})`, { file });
    seen.set(n, i);
  });
  if (!names.length) throw new GrlError(`${file}: no labels`, { file });
  return names as string[];
}
