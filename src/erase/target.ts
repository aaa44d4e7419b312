// Concept erasure, what to fit on: the tensor (by default the hidden states the
// heads read) and the data spec of the label, whether the label is a head of the
// model (its shape gives token level and class count) or only a key in the data
// (an encoder-only model: token level from the tensor's rank, classes from the data).
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import type { DataSpec, Example } from '../data/jsonl';
import { CorpusOptions, corpusForModel, loadExamples } from '../data/examples';
import { HeadInfo, analyzeHeads, resolveHead } from '../patch/heads';
import { headShape, taggerSpec } from '../experiment/models';
import { dataSpecFor, embeddingLimits } from '../train/trainer';
import { readHeadRecords } from '../heads/metadata';
import { checkEraseTensor } from './splice';

export interface ErasureTarget {
  tensor: string;
  /** The data key of the label. */
  label: string;
  spec: DataSpec;
  tokenLevel: boolean;
  /** From the head's output shape; undefined when the label is not a head (taken from the data). */
  numClasses?: number;
  head?: HeadInfo;
}

/**
 * The hidden states the heads read: the `from` tensor heads added by `heads add` record in
 * metadata, else an encoder export's `last_hidden_state` output, else the one splice tensor
 * all detected heads share. (`last_hidden_state` comes before head detection: in a
 * single-output encoder, detection would call the output itself a head.)
 */
export function defaultErasureTensor(model: Model): string {
  const fromMeta = headsMetadataFrom(model);
  if (fromMeta.length === 1) return fromMeta[0];
  const outputs = (model.proto.graph?.output ?? []).map((o) => o.name ?? '');
  if (outputs.includes('last_hidden_state')) return 'last_hidden_state';
  const splices = [...new Set(analyzeHeads(model).heads.map((h) => h.spliceTensor).filter(Boolean))];
  if (splices.length === 1) return splices[0];
  const seen = [...new Set([...fromMeta, ...splices])];
  throw new GrlError(`${model.source}: cannot tell which hidden states to erase at${seen.length ? ` (the heads read ${seen.map((t) => `'${t}'`).join(', ')})` : ''}; give --at TENSOR`, { file: model.source });
}

function headsMetadataFrom(model: Model): string[] {
  return [...new Set(readHeadRecords(model).map((h) => h.from).filter((f): f is string => typeof f === 'string' && f !== ''))];
}

function headNamed(model: Model, label: string): HeadInfo | undefined {
  try {
    return resolveHead(model, label);
  } catch (e) {
    if (e instanceof GrlError) return undefined;
    throw e;
  }
}

export function erasureTarget(model: Model, label: string, at?: string): ErasureTarget {
  const head = headNamed(model, label);
  const tensor = at ?? head?.spliceTensor ?? defaultErasureTensor(model);
  const { rank } = checkEraseTensor(model, tensor);
  if (head) {
    const shape = headShape(model, head);
    if (shape.tokenLevel && rank === 2) throw new GrlError(`${model.source}: tensor '${tensor}' is [rows, dim]; the token-level label '${label}' needs [batch, seq, dim]`, { file: model.source });
    return { tensor, label: head.name, spec: taggerSpec(model, [head]), tokenLevel: shape.tokenLevel, numClasses: shape.numClasses, head };
  }
  const g = model.proto.graph ?? {};
  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const modelInputs = (g.input ?? []).map((i) => i.name ?? '').filter((n) => !inits.has(n));
  const spec = dataSpecFor({ modelInputs, heads: [] }, embeddingLimits(model));
  const tokenLevel = rank !== 2;
  spec.labels = [{ key: label, tokenLevel, kind: 'ce' }];
  return { tensor, label, spec, tokenLevel };
}

/**
 * The examples to fit on, through the project's one data loader: ids JSONL, or with `corpus`
 * (a tokenizer and `label=COLUMN`) a corpus file tokenized in memory, with the label names
 * the model carries.
 */
export function loadErasureExamples(file: string, spec: DataSpec, corpus?: CorpusOptions, model?: Model): Example[] {
  return loadExamples(file, spec, corpus && model ? corpusForModel(corpus, model) : corpus);
}
