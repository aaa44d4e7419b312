// Training, evaluation: per-head loss and accuracy (CE) or mean squared and
// absolute error (MSE) of the eval graph over a whole data set, as the trainer's
// eval lines report them. CE heads also get macro-F1 and, when their label
// names are BIO-style, entity-span precision/recall/F1 (src/metrics/), from the
// argmax of the logits the eval graph outputs.
import * as ort from 'onnxruntime-node';
import type { TrainingGraph } from '../grad/training';
import { Batch, DataSpec, Example, makeBatch } from '../data/jsonl';
import type { TrainingSession } from './session';
import { batchFeeds } from './feeds';
import { ClassRow, HeadScorer, MAX_SCORED_CLASSES, SpanTypeRow } from '../metrics';
import type { Model } from '../onnx/io';
import { readLabelNames } from '../heads/labels';
import { CorpusOptions, corpusLabelNames } from '../data/examples';

export interface HeadMetrics {
  loss: number;
  accuracy?: number;
  mae?: number;
  count: number;
  /** CE heads: mean F1 over the classes present in gold or predictions. */
  macro_f1?: number;
  /** CE heads with BIO-style label names: seqeval/conlleval entity-span scores (micro over types). */
  span_precision?: number;
  span_recall?: number;
  span_f1?: number;
  /** With `perClass` (the run's last eval): one row per class, in class-id order. */
  per_class?: ClassRow[];
  /** With `perClass`: confusion[gold][predicted] over the classes of per_class (≤ 64 classes). */
  confusion?: number[][];
  /** With `perClass`, span heads: scores per entity type. */
  span_types?: SpanTypeRow[];
}
export interface EvalRecord { step: number; loss: number; heads: Record<string, HeadMetrics> }

export interface EvaluateOptions {
  /** Label names per head (model metadata `grl-onnx.id2label.<head>`); ids are used without them. */
  labelNames?: Record<string, readonly string[] | undefined>;
  /** Add the per-class table, confusion counts and per-type span scores. */
  perClass?: boolean;
  /** CE heads without class metrics: MLM heads (their classes are the vocabulary). */
  unscored?: readonly string[];
}

/** The value of a scalar float output (NaN when absent). */
export const scalar = (t: ort.Tensor | undefined): number => (t ? Number((t.data as Float32Array)[0]) : NaN);

/** The class metrics of one CE head for its HeadMetrics. */
function classMetrics(scorer: HeadScorer, perClass: boolean): Partial<HeadMetrics> {
  const { classes, spans } = scorer.report();
  const m: Partial<HeadMetrics> = { macro_f1: classes.macroF1 };
  if (spans) Object.assign(m, { span_precision: spans.precision, span_recall: spans.recall, span_f1: spans.f1 });
  if (!perClass) return m;
  m.per_class = classes.classes;
  if (classes.confusion) m.confusion = classes.confusion;
  if (spans) m.span_types = spans.types;
  return m;
}

/** Per-head loss and accuracy (CE) or mean absolute error (MSE) of the eval graph over a whole data set. */
export async function evaluate(session: TrainingSession, examples: Example[], spec: DataSpec, tg: Pick<TrainingGraph, 'heads' | 'outputs'>, batchSize: number, opts: EvaluateOptions = {}): Promise<Omit<EvalRecord, 'step'>> {
  // `hits` is argmax hits (CE) or Σ|error| (MSE); `loss` is Σ loss·count (CE) or Σ error² (MSE).
  const sums: Record<string, { loss: number; hits: number; count: number }> = {};
  // CE heads' class scorers, made at the first batch (the class count is the logits' last dim); null: not scored.
  const scorers: Record<string, HeadScorer | null | undefined> = {};
  for (const h of tg.heads) sums[h.head] = { loss: 0, hits: 0, count: 0 };
  for (let s = 0; s < examples.length; s += batchSize) {
    const batch = makeBatch(examples.slice(s, s + batchSize), spec);
    const out = await session.runEvalStep(batchFeeds(batch, spec, tg.heads));
    for (const h of tg.heads) {
      const m = sums[h.head];
      if (h.kind === 'mse') {
        // From the eval graph's predictions, in float64, over the targets that are not NaN
        // (the ones the loss counts): the data set's mean, not a mean of batch means.
        const target = batch.labels[h.head] as Float32Array;
        const pred = out[h.output].data as Float32Array;
        for (let i = 0; i < target.length; i++) {
          if (Number.isNaN(target[i])) continue;
          const e = pred[i] - target[i];
          m.loss += e * e;
          m.hits += Math.abs(e);
          m.count++;
        }
        continue;
      }
      const count = scalar(out[tg.outputs.count[h.head]]);
      m.loss += scalar(out[tg.outputs.headLoss[h.head]]) * count;
      m.hits += scalar(out[tg.outputs.correct[h.head]]);
      m.count += count;
      scorers[h.head] = scoreHead(scorers[h.head], h.head, batch, out[h.output], opts);
    }
  }
  const heads: Record<string, HeadMetrics> = {};
  let loss = 0;
  for (const h of tg.heads) {
    const m = sums[h.head];
    const mean = (x: number) => (m.count ? x / m.count : 0);
    const scorer = scorers[h.head];
    heads[h.head] = h.kind === 'mse'
      ? { loss: mean(m.loss), mae: mean(m.hits), count: m.count }
      : { loss: mean(m.loss), accuracy: mean(m.hits), count: m.count, ...(scorer ? classMetrics(scorer, !!opts.perClass) : {}) };
    loss += h.weight * heads[h.head].loss;
  }
  return { loss, heads };
}

/** The head's scorer after this batch (made on first use), or null once its logits do not line up with its labels. */
function scoreHead(scorer: HeadScorer | null | undefined, head: string, batch: Batch, logits: ort.Tensor | undefined, opts: EvaluateOptions): HeadScorer | null {
  if (scorer === null || !logits || opts.unscored?.includes(head)) return null;
  const C = logits.dims[logits.dims.length - 1];
  if (!scorer) {
    if (!(C >= 1 && C <= MAX_SCORED_CLASSES)) return null;
    scorer = new HeadScorer(C, { names: opts.labelNames?.[head] });
  }
  return logits.dims[logits.dims.length - 1] === C && scorer.numClasses === C && scorer.addBatch(batch.labels[head] as BigInt64Array, logits.data as Float32Array, batch.size) ? scorer : null;
}

/**
 * Label names of the heads for evaluation: the model's `grl-onnx.id2label.<head>`, else (a
 * corpus run) the training label vocabulary the data was read with, else none (ids).
 */
export function evalLabelNames(model: Pick<Model, 'proto'>, heads: readonly { head: string }[], corpus?: { options: CorpusOptions; data: string }): Record<string, string[] | undefined> {
  const vocab = corpus ? corpusLabelNames(corpus.data, corpus.options) : {};
  return Object.fromEntries(heads.map((h) => [h.head, readLabelNames(model, h.head) ?? vocab[h.head]]));
}
