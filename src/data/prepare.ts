// Data preparation: corpus sentences → the ids JSONL records the trainer reads.
// Words go through the tokenizer with their labels aligned to subwords
// (src/tokenize/align.ts); labels become class ids through the label vocabulary.
// Nothing is printed: truncation and unknown labels come back as warning lines,
// one per kind, and `--strict-labels` turns an unknown label into an error.
import { GrlError } from '../onnx/errors';
import { alignWords, IGNORE_LABEL, truncateEncoding } from '../tokenize/align';
import type { TextTokenizer } from '../tokenize/tokenizer';
import { ColumnRequest, FormatName, readCorpus, Sentence } from './formats';
import { buildLabelVocab, LabelOrder, LabelVocab, requireLabels } from './labels';

export interface PrepareOptions {
  tokenizer: TextTokenizer;
  /** `--label NAME=COLUMN`. */
  labels: ColumnRequest[];
  format?: FormatName;
  /** The training vocabulary (dev/test data); built from this corpus when absent. */
  labelsFrom?: LabelVocab;
  /** Label names the model's heads already carry (heads add --labels): they win over labelsFrom and building. */
  modelLabels?: LabelVocab;
  /** Order of a vocabulary built here (default 'sorted'). */
  labelOrder?: LabelOrder;
  labelAllSubwords?: boolean;
  /** Longest sequence in tokens, special tokens included (the model's position table). */
  maxLength?: number;
  /** An unknown dev/test label is an error instead of -100. */
  strictLabels?: boolean;
}

export interface PreparedRecord {
  line: number;
  input_ids: number[];
  /** Per label name: one class id per token (token labels) or one (sentence labels); -100 = ignore. */
  labels: Record<string, number[] | number>;
  words: string[];
  /** Plain text input: the line. */
  text?: string;
}

export interface PrepareStats {
  sentences: number;
  words: number;
  tokens: number;
  longest: number;
  truncatedSentences: number;
  truncatedWords: number;
  emptyWords: number;
  /** Per label name: unknown label → count. */
  unknownLabels: Record<string, Record<string, number>>;
}

export interface Prepared {
  file: string;
  format: FormatName;
  records: PreparedRecord[];
  vocab: LabelVocab;
  /** Whether each label is a sentence label (true) or a word label (false). */
  sentenceLevel: Record<string, boolean>;
  stats: PrepareStats;
  /** One line per kind of problem the caller should show: truncation, unknown labels, lost words. */
  warnings: string[];
}

/** Word labels or a sentence label, the same kind in every sentence. */
function labelLevels(sentences: Sentence[], names: string[], file: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const name of names) {
    let level: boolean | undefined;
    for (const s of sentences) {
      const v = s.labels[name];
      if (v === null) continue;
      const here = !Array.isArray(v);
      if (level !== undefined && here !== level) throw new GrlError(`${file}:${s.line}: label '${name}' is a ${here ? 'sentence label here but word labels' : 'word label here but a sentence label'} earlier`, { file });
      level = here;
    }
    out[name] = level ?? false;
  }
  return out;
}

class LabelIds {
  private readonly index: Record<string, Map<string, number>> = {};
  readonly unknown: Record<string, Record<string, number>> = {};
  constructor(vocab: LabelVocab, private readonly file: string, private readonly strict: boolean) {
    for (const [name, list] of Object.entries(vocab)) this.index[name] = new Map(list.map((l, i) => [l, i]));
  }
  id(name: string, label: string | null, line: number): number {
    if (label === null) return IGNORE_LABEL;
    const id = this.index[name].get(label);
    if (id !== undefined) return id;
    if (this.strict) throw new GrlError(`${this.file}:${line}: label '${name}' = '${label}' is not in the training label vocabulary (--strict-labels)`, { file: this.file });
    const u = (this.unknown[name] ??= {});
    u[label] = (u[label] ?? 0) + 1;
    return IGNORE_LABEL;
  }
}

export function prepareSentences(sentences: Sentence[], file: string, format: FormatName, opts: PrepareOptions): Prepared {
  const names = opts.labels.map((l) => l.name);
  const fixed = opts.modelLabels ?? {};
  const open = names.filter((n) => !fixed[n]);
  const vocab: LabelVocab = opts.labelsFrom ? {} : buildLabelVocab(sentences, open, opts.labelOrder ?? 'sorted', file);
  if (opts.labelsFrom) {
    requireLabels(opts.labelsFrom, open, '--labels-from');
    for (const name of open) vocab[name] = opts.labelsFrom[name];
  }
  for (const name of names) if (fixed[name]) vocab[name] = fixed[name];
  const sentenceLevel = labelLevels(sentences, names, file);
  const ids = new LabelIds(vocab, file, opts.strictLabels ?? false);
  const tok = opts.tokenizer;
  const stats: PrepareStats = { sentences: sentences.length, words: 0, tokens: 0, longest: 0, truncatedSentences: 0, truncatedWords: 0, emptyWords: 0, unknownLabels: ids.unknown };
  const wordNames = names.filter((n) => !sentenceLevel[n]);
  const records = sentences.map((s): PreparedRecord => {
    stats.words += s.words.length;
    const labels: Record<string, number[] | number> = {};
    let inputIds: number[];
    if (s.text !== undefined) {
      const full = tok.encodeText(s.text);
      inputIds = opts.maxLength !== undefined ? truncateEncoding(full, opts.maxLength).ids : full.ids;
      if (inputIds.length < full.ids.length) stats.truncatedSentences++;
    } else {
      const columns = wordNames.map((n) => (s.labels[n] as (string | null)[] | null ?? s.words.map(() => null)).map((l, w) => ids.id(n, l, s.wordLines?.[w] ?? s.line)));
      const a = alignWords(tok, s.words, columns, { maxLength: opts.maxLength, labelAllSubwords: opts.labelAllSubwords });
      inputIds = a.ids;
      wordNames.forEach((n, c) => { labels[n] = a.labels[c]; });
      if (a.truncatedWords) stats.truncatedSentences++;
      stats.truncatedWords += a.truncatedWords;
      stats.emptyWords += a.emptyWords;
    }
    for (const n of names) if (sentenceLevel[n]) labels[n] = ids.id(n, s.labels[n] as string | null, s.line);
    stats.tokens += inputIds.length;
    stats.longest = Math.max(stats.longest, inputIds.length);
    return { line: s.line, input_ids: inputIds, labels, words: s.words, ...(s.text !== undefined ? { text: s.text } : {}) };
  });
  return { file, format, records, vocab, sentenceLevel, stats, warnings: warningLines(file, stats, opts.maxLength) };
}

function warningLines(file: string, st: PrepareStats, maxLength?: number): string[] {
  const out: string[] = [];
  if (st.truncatedSentences) {
    out.push(`${file}: truncated ${st.truncatedSentences} of ${st.sentences} sentences to ${maxLength} tokens (${st.truncatedWords} words cut)`);
  }
  if (st.emptyWords) out.push(`${file}: ${st.emptyWords} words became no token at all; their labels are dropped`);
  const unknown = Object.entries(st.unknownLabels).flatMap(([name, m]) => Object.entries(m).map(([l, n]) => ({ name, l, n })));
  if (unknown.length) {
    const total = unknown.reduce((a, u) => a + u.n, 0);
    const shown = unknown.sort((a, b) => b.n - a.n).slice(0, 8).map((u) => `${u.name} '${u.l}' ×${u.n}`).join(', ');
    out.push(`${file}: ${total} labels not in the training vocabulary are ignored (-100): ${shown}${unknown.length > 8 ? ', …' : ''}`);
  }
  return out;
}

/** Read, parse and prepare a corpus file. */
export function prepareCorpus(file: string, opts: PrepareOptions): Prepared {
  const { format, sentences } = readCorpus(file, opts.labels, opts.format);
  return prepareSentences(sentences, file, format, opts);
}

/** The JSON Lines text of prepared records (the ids format data/jsonl.ts reads). */
export function preparedJsonl(p: Prepared): string {
  const parts: string[] = [];
  for (const r of p.records) {
    const rec: Record<string, unknown> = { input_ids: r.input_ids, attention_mask: r.input_ids.map(() => 1), ...r.labels };
    if (r.text !== undefined) rec.text = r.text;
    else rec.words = r.words;
    parts.push(JSON.stringify(rec));
  }
  return `${parts.join('\n')}\n`;
}

/** Parse `NAME=COLUMN` (`pos=upos`, `ner=3`). */
export function parseLabelRequest(spec: string): ColumnRequest {
  const k = spec.indexOf('=');
  if (k <= 0 || k === spec.length - 1) throw new GrlError(`--label ${spec}: expected NAME=COLUMN (e.g. pos=upos, ner=3)`);
  const name = spec.slice(0, k);
  if (['input_ids', 'attention_mask', 'token_type_ids', 'position_ids', 'words', 'text'].includes(name)) throw new GrlError(`--label ${spec}: '${name}' is a reserved key; choose another label name`);
  return { name, column: spec.slice(k + 1) };
}
