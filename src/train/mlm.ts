// Training, MLM side: which loss heads are masked-language-model heads, and the
// masking that makes their labels (src/data/masking.ts); the data (ids JSONL, or
// plain text through the tokenizer) comes from src/data/examples.ts. The trainer masks each
// training example by (seed, epoch, example index) and the eval set once, by
// (seed, EVAL_STREAM, index), so resume is exact and evals are comparable.
// An MLM head's loss is plain cross-entropy against labels that are -100 except
// at masked positions, so its loss and accuracy are over the masked tokens only.
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import type { TrainingGraph } from '../grad/training';
import type { LossKind } from '../grad/losses';
import type { DataSpec, Example } from '../data/jsonl';
import type { CorpusOptions } from '../data/examples';
import { EVAL_STREAM, Masker } from '../data/masking';
import { loadTokenizer, TextTokenizer } from '../tokenize/tokenizer';

/** A loss head's kind as the trainer takes it: 'mlm' is cross-entropy on masked labels the trainer makes. */
export type TrainLossKind = LossKind | 'mlm';

/** What MLM masking needs of a tokenizer. */
export type MlmTokenizer = Pick<TextTokenizer, 'file' | 'vocabSize' | 'maskTokenId' | 'padTokenId' | 'specialIds'>;

export interface MlmOptions {
  /** Mask token id (default: the tokenizer's). */
  maskTokenId?: number;
  /** Ids never masked nor drawn as random replacements (default: the tokenizer's special ids). */
  specialIds?: number[];
  /** Fraction of maskable tokens predicted per sequence (default 0.15). */
  probability?: number;
}

/** Output name and `grl-onnx.heads` metadata kind that mark an MLM head (the `heads add --mlm` convention). */
export const MLM_OUTPUT = 'mlm_logits';
export const HEADS_METADATA = 'grl-onnx.heads';

/** Heads the model's `grl-onnx.heads` metadata lists with kind 'mlm' (by name and by output). */
function metadataMlmHeads(model: Model | undefined): Set<string> {
  const entry = model?.proto.metadata_props?.find((p) => p.key === HEADS_METADATA);
  const found = new Set<string>();
  if (!entry?.value) return found;
  try {
    const list = JSON.parse(entry.value) as { name?: string; output?: string; kind?: string }[];
    if (Array.isArray(list)) for (const h of list) if (h?.kind === 'mlm') for (const n of [h.name, h.output]) if (n) found.add(n);
  } catch {
    // Malformed metadata is not ours to judge here: the head is then MLM only by output name or by kind.
  }
  return found;
}

/**
 * The loss heads trained as MLM: kind 'mlm', or no kind on a head whose output is `mlm_logits`
 * or whose metadata says kind 'mlm'. `losses` and `heads` are in the same order.
 */
export function mlmHeads(losses: { kind?: TrainLossKind }[], heads: Pick<TrainingGraph['heads'][number], 'head' | 'output'>[], model?: Model): string[] {
  const meta = metadataMlmHeads(model);
  return heads.filter((h, i) => {
    const kind = losses[i]?.kind;
    return kind === 'mlm' || (kind === undefined && (h.output === MLM_OUTPUT || meta.has(h.head) || meta.has(h.output)));
  }).map((h) => h.head);
}

export interface MlmSetup {
  heads: string[];
  masker: Masker;
  inputKey: string;
  /** Masked copy of a training example: fresh masks per epoch, fixed by (seed, epoch, index). */
  train(e: Example, epoch: number, index: number): Example;
  /** Masked copies of the eval set, the same on every eval. */
  eval(examples: Example[]): Example[];
}

export interface MlmSetupOptions {
  mlm?: MlmOptions;
  /** tokenizer.json or a loaded tokenizer: the mask, pad and special ids. */
  tokenizer?: string | MlmTokenizer;
  seed?: number;
}

/** Masking for the MLM heads of `tg` (undefined when there are none). Checks ids against the model. */
export function setupMlm(heads: string[], tg: Pick<TrainingGraph, 'modelInputs' | 'heads'>, limits: Record<string, number>, opts: MlmSetupOptions): MlmSetup | undefined {
  if (!heads.length) return undefined;
  const inputKey = 'input_ids';
  if (!tg.modelInputs.includes(inputKey)) throw new GrlError(`MLM head '${heads[0]}': the model has no '${inputKey}' input to mask (inputs: ${tg.modelInputs.join(', ')})`);
  const tok = typeof opts.tokenizer === 'string' ? loadTokenizer(opts.tokenizer) : opts.tokenizer;
  const maskTokenId = opts.mlm?.maskTokenId ?? tok?.maskTokenId ?? undefined;
  if (maskTokenId === undefined || maskTokenId === null) {
    throw new GrlError(tok ? `MLM head '${heads[0]}': the tokenizer ${tok.file ?? ''} has no mask token; give --mask-token-id` : `MLM head '${heads[0]}': masking needs the mask token id: give --tokenizer or --mask-token-id`);
  }
  const table = limits[inputKey];
  const classes = heads.map((h) => tg.heads.find((x) => x.head === h)?.numClasses);
  for (const [k, c] of classes.entries()) {
    if (c !== undefined && table !== undefined && c < table) throw new GrlError(`MLM head '${heads[k]}' predicts ${c} classes but '${inputKey}' indexes an embedding table of ${table} rows: its labels would fall outside the head`);
  }
  // Random replacements come from ids every part knows: the embedding table, the head, the tokenizer.
  const known = [table, ...classes, tok?.vocabSize].filter((x): x is number => x !== undefined);
  if (!known.length) throw new GrlError(`MLM head '${heads[0]}': cannot tell the vocabulary size (no embedding table found for '${inputKey}', no static class count, no tokenizer)`);
  const masker = new Masker({
    maskTokenId,
    vocabSize: Math.min(...known),
    specialIds: opts.mlm?.specialIds ?? tok?.specialIds ?? [],
    padTokenId: tok?.padTokenId,
    probability: opts.mlm?.probability,
    seed: opts.seed ?? 0,
  });
  return {
    heads,
    masker,
    inputKey,
    train: (e, epoch, index) => masker.maskExample(e, epoch, index, inputKey, heads),
    eval: (examples) => examples.map((e, i) => masker.maskExample(e, EVAL_STREAM, i, inputKey, heads)),
  };
}

/** The data spec without the MLM heads' labels: the data does not hold them, masking makes them. */
export function readSpec(spec: DataSpec, mlm: MlmSetup | undefined): DataSpec {
  if (!mlm) return spec;
  return { ...spec, labels: spec.labels.filter((l) => !mlm.heads.includes(l.key)) };
}

/** MLM labels are per token, whatever the head's output shape says. */
export function feedSpec(spec: DataSpec, mlm: MlmSetup | undefined): DataSpec {
  if (!mlm) return spec;
  return { ...spec, labels: spec.labels.map((l) => (mlm.heads.includes(l.key) ? { ...l, tokenLevel: true } : l)) };
}

/**
 * A `*.txt` file read as a corpus is plain text when every loss head is an MLM head and
 * no format is given (format sniffing would take a sentence for CoNLL columns); with
 * labelled heads, `.txt` stays a guess between CoNLL and word/TAG, as for `data prepare`.
 */
export function corpusFor(file: string, corpus: CorpusOptions | undefined, spec: DataSpec): CorpusOptions | undefined {
  if (!corpus || corpus.format || spec.labels.length || corpus.labels.length || !/\.txt$/i.test(file)) return corpus;
  return { ...corpus, format: 'text' };
}
