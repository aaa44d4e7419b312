// Training, data side of a training graph: which model inputs the data feeds,
// the label layout per loss head (CE ids, MSE float targets shaped like the head's
// output), the embedding-table limits ids are checked against, and one batch as
// onnxruntime feeds. The trainer, the probe and the experiment share it.
import * as ort from 'onnxruntime-node';
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { Graph } from '../onnx/graph';
import { dimsOf } from '../onnx/tensor';
import { inferShapes } from '../onnx/shapes';
import type { TrainingGraph } from '../grad/training';
import type { Dim } from '../grad/types';
import { Batch, DataSpec, LabelSpec, POSITION_FILL } from '../data/jsonl';

/** Rows of the embedding table each int model input indexes (Gather(initializer, input)). */
export function embeddingLimits(model: Model): Record<string, number> {
  const g = new Graph(model.proto.graph ?? {});
  const out: Record<string, number> = {};
  for (const n of g.nodes) {
    if (n.op_type !== 'Gather') continue;
    const [data, idx] = n.input ?? [];
    const t = g.initializer(data);
    if (t && g.isGraphInput(idx)) out[idx] = Math.min(out[idx] ?? Infinity, dimsOf(t)[0]);
  }
  return out;
}

/**
 * How an MSE head's labels are laid out, from its output's static shape: [B] or [B, K...]
 * with static K (sequence-level: K values per example), or [B, T, K...] with a symbolic T
 * (token-level: K values per token). Every dim after the batch (and T) must be static.
 */
export function mseLabelLayout(head: string, output: string, shape: Dim[] | undefined): Pick<LabelSpec, 'tokenLevel' | 'dims'> {
  const show = shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : 'unknown';
  if (!shape || shape.length === 0) throw new GrlError(`MSE head '${head}': the shape of its output '${output}' is ${show}; need [batch, ...] with static dims after batch (and sequence)`);
  const tokenLevel = shape.length >= 2 && typeof shape[1] !== 'number';
  const rest = shape.slice(tokenLevel ? 2 : 1);
  if (!rest.every((d): d is number => typeof d === 'number')) throw new GrlError(`MSE head '${head}': output '${output}' has shape ${show}; every dim after batch${tokenLevel ? ' and sequence' : ''} must be static to know the label shape`);
  return { tokenLevel, dims: rest };
}

/** Label layouts of the MSE heads of `tg`, from the (patched or inference) model's static shapes. */
export function mseLayouts(model: Model, heads: TrainingGraph['heads']): Record<string, Pick<LabelSpec, 'tokenLevel' | 'dims'>> {
  const mse = heads.filter((h) => h.kind === 'mse');
  if (!mse.length) return {};
  const shapes = inferShapes(model.proto.graph ?? {});
  return Object.fromEntries(mse.map((h) => [h.head, mseLabelLayout(h.head, h.output, shapes.shape(h.output))]));
}

export function dataSpecFor(tg: Pick<TrainingGraph, 'modelInputs' | 'heads'>, limits: Record<string, number>, mse: Record<string, Pick<LabelSpec, 'tokenLevel' | 'dims'>> = {}): DataSpec {
  const optional: Record<string, number> = {};
  for (const name of tg.modelInputs) {
    if (name === 'attention_mask') optional[name] = 1;
    else if (name === 'token_type_ids') optional[name] = 0;
    else if (name === 'position_ids') optional[name] = POSITION_FILL;
  }
  return {
    inputs: tg.modelInputs,
    optionalInputs: optional,
    labels: tg.heads.map((h): LabelSpec => {
      if (h.kind !== 'mse') return { key: h.head, tokenLevel: h.tokenLevel, numClasses: h.numClasses, kind: h.kind };
      const layout = mse[h.head];
      if (!layout) throw new GrlError(`MSE head '${h.head}': no label layout (pass mseLayouts(model, heads) to dataSpecFor)`);
      return { key: h.head, kind: 'mse', ...layout };
    }),
    idLimits: limits,
  };
}

export function batchFeeds(batch: Batch, spec: DataSpec, heads: TrainingGraph['heads']): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of spec.inputs) feeds[name] = new ort.Tensor('int64', batch.inputs[name], [batch.size, batch.seqLen]);
  for (const h of heads) {
    // The data key is the head's name; the graph input usually has the same name (labelInput).
    const data = batch.labels[h.head];
    const l = spec.labels.find((x) => x.key === h.head);
    // An MSE label must have the output's exact shape: Sub would broadcast [B] against [B, 1].
    const tokenLevel = l?.tokenLevel ?? h.tokenLevel;
    const dims = [batch.size, ...(tokenLevel ? [batch.seqLen] : []), ...(h.kind === 'mse' ? l?.dims ?? [] : [])];
    feeds[h.labelInput] = data instanceof Float32Array ? new ort.Tensor('float32', data, dims) : new ort.Tensor('int64', data, dims);
  }
  return feeds;
}

