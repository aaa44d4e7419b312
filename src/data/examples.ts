// The one entry point the trainer, probe and experiment use to read data: ids
// JSONL as before, or, given a tokenizer, a corpus file (CoNLL-U, CoNLL, word/TAG,
// JSONL with words, plain text) prepared in memory. The trainer never sees a
// format, only examples.
import * as fs from 'fs';
import { GrlError } from '../onnx/errors';
import type { Model } from '../onnx/io';
import { readLabelNames } from '../heads/labels';
import { loadTokenizer, TextTokenizer } from '../tokenize/tokenizer';
import { DataSpec, Example, loadJsonl } from './jsonl';
import { ColumnRequest, FormatName, readCorpus } from './formats';
import { buildLabelVocab, LabelOrder, LabelVocab, readLabelVocab, requireLabels } from './labels';
import { parseLabelRequest, prepareSentences, Prepared } from './prepare';

export interface CorpusOptions {
  /** tokenizer.json (or a loaded tokenizer). */
  tokenizer: string | TextTokenizer;
  /** `NAME=COLUMN` strings or parsed requests; NAME is the head the labels train. */
  labels: (string | ColumnRequest)[];
  format?: FormatName;
  /** Training label vocabulary: a labels.json, a training corpus file, or the vocabulary itself. */
  labelsFrom?: string | LabelVocab;
  labelOrder?: LabelOrder;
  labelAllSubwords?: boolean;
  /** Longest sequence in tokens; capped by (and by default) the model's sequence limit (DataSpec.sequenceLimit). */
  maxLength?: number;
  strictLabels?: boolean;
  /** Label names from the model (corpusForModel): they win over labelsFrom and building. */
  modelLabels?: LabelVocab;
  /** Truncation and unknown-label lines (library code does not print). */
  onWarning?: (line: string) => void;
}

const tokenizers = new Map<string, TextTokenizer>();

function tokenizerOf(t: string | TextTokenizer): TextTokenizer {
  if (typeof t !== 'string') return t;
  let tok = tokenizers.get(t);
  if (!tok) {
    tok = loadTokenizer(t);
    tokenizers.set(t, tok);
  }
  return tok;
}

const requests = (c: CorpusOptions): ColumnRequest[] => c.labels.map((l) => (typeof l === 'string' ? parseLabelRequest(l) : l));

/** Whether `file` is ids JSONL already (its first line has input_ids): read as before. */
function isIdsJsonl(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const first = buf.subarray(0, n).toString('utf8').split('\n').find((l) => l.trim());
    return !!first && first.trimStart().startsWith('{') && /"input_ids"\s*:/.test(first);
  } catch {
    return false; // unreadable: the corpus reader reports it
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The training vocabulary `labelsFrom` names: a labels.json, or a corpus to build it from. */
export function resolveLabelVocab(from: string | LabelVocab, c: CorpusOptions): LabelVocab {
  const reqs = requests(c).filter((r) => !c.modelLabels?.[r.name]);
  if (typeof from !== 'string' || !reqs.length) return typeof from === 'string' ? {} : from;
  if (from.endsWith('.json')) return requireLabels(readLabelVocab(from), reqs.map((r) => r.name), from);
  const { sentences } = readCorpus(from, reqs, c.format);
  return buildLabelVocab(sentences, reqs.map((r) => r.name), c.labelOrder ?? 'sorted', from);
}

/**
 * The label names a corpus run reads its labels with: the model's (they win), else the
 * training vocabulary (`labelsFrom`, or built from `trainFile`). Ids JSONL has none.
 */
export function corpusLabelNames(trainFile: string, c: CorpusOptions): LabelVocab {
  const from = c.labelsFrom ?? trainFile;
  const built = typeof from === 'string' && !from.endsWith('.json') && isIdsJsonl(from) ? {} : resolveLabelVocab(from, c);
  return { ...built, ...(c.modelLabels ?? {}) };
}

/** A head with label names in the model (heads add --labels) reads its labels with those names. */
export function corpusForModel(c: CorpusOptions, model: Pick<Model, 'proto'>): CorpusOptions {
  const modelLabels: LabelVocab = {};
  for (const r of requests(c)) {
    const names = readLabelNames(model, r.name);
    if (names) modelLabels[r.name] = names;
  }
  return Object.keys(modelLabels).length ? { ...c, modelLabels } : c;
}

/** Eval data reads labels with the training file's vocabulary. */
export function corpusForEval(c: CorpusOptions, trainFile: string): CorpusOptions {
  return { ...c, labelsFrom: c.labelsFrom ?? trainFile };
}

/** Prepare a corpus file for `spec`'s heads; checks label counts and token ids against the model up front. */
export function prepareForSpec(file: string, spec: DataSpec, c: CorpusOptions): Prepared {
  const tok = tokenizerOf(c.tokenizer);
  const reqs = requests(c);
  const byName = new Map(reqs.map((r) => [r.name, r]));
  for (const l of spec.labels) {
    if (!byName.has(l.key)) throw new GrlError(`head '${l.key}' needs labels from ${file}: add --label ${l.key}=COLUMN`);
    if (l.kind === 'mse') throw new GrlError(`head '${l.key}' is an MSE head; corpus labels are classes (use ids JSONL for float targets)`);
  }
  const idKey = tokenIdInput(spec);
  const rows = spec.idLimits?.[idKey];
  if (rows !== undefined && tok.vocabSize > rows) {
    throw new GrlError(`${tok.file}: the tokenizer has ${tok.vocabSize} ids but the model's '${idKey}' embedding table has ${rows} rows`);
  }
  const labelsFrom = c.labelsFrom !== undefined ? resolveLabelVocab(c.labelsFrom, c) : undefined;
  const { format, sentences } = readCorpus(file, reqs, c.format);
  const limit = spec.sequenceLimit?.limit;
  const maxLength = c.maxLength !== undefined && limit !== undefined ? Math.min(c.maxLength, limit) : c.maxLength ?? limit;
  const p = prepareSentences(sentences, file, format, { ...c, tokenizer: tok, labels: reqs, labelsFrom, maxLength });
  for (const l of spec.labels) {
    if (l.tokenLevel === p.sentenceLevel[l.key]) {
      throw new GrlError(`--label ${l.key}=${byName.get(l.key)!.column}: head '${l.key}' is ${l.tokenLevel ? 'token-level' : 'sequence-level'} but ${file} gives ${p.sentenceLevel[l.key] ? 'a sentence label' : 'word labels'}`);
    }
    const n = p.vocab[l.key].length;
    if (l.numClasses !== undefined && n > l.numClasses) throw new GrlError(`${labelsFrom ? 'the training label vocabulary' : file} has ${n} '${l.key}' labels but head '${l.key}' has ${l.numClasses} classes`);
  }
  for (const w of p.warnings) c.onWarning?.(w);
  return p;
}

/** The model input fed with token ids: the one input the data must provide. */
function tokenIdInput(spec: DataSpec): string {
  const required = spec.inputs.filter((n) => !(spec.optionalInputs && n in spec.optionalInputs));
  if (required.length !== 1) throw new GrlError(`a corpus can feed one token-id input, but the model needs ${required.join(', ')}`);
  return required[0];
}

/**
 * Examples from `file`: ids JSONL as loadJsonl reads it, or with `corpus` (a tokenizer
 * and label columns) a corpus file prepared in memory. Ids JSONL keeps working when a
 * tokenizer is given.
 */
export function loadExamples(file: string, spec: DataSpec, corpus?: CorpusOptions): Example[] {
  if (!corpus || isIdsJsonl(file)) return loadJsonl(file, spec);
  const p = prepareForSpec(file, spec, corpus);
  const idKey = tokenIdInput(spec);
  return p.records.map((r) => {
    const labels: Example['labels'] = {};
    for (const l of spec.labels) {
      const v = r.labels[l.key];
      labels[l.key] = typeof v === 'number' ? v : Float64Array.from(v);
    }
    return { line: r.line, length: r.input_ids.length, inputs: { [idKey]: Int32Array.from(r.input_ids) }, labels };
  });
}
