// Training, evaluation: per-head loss and accuracy (CE) or mean squared and
// absolute error (MSE) of the eval graph over a whole data set, as the trainer's
// eval lines report them.
import * as ort from 'onnxruntime-node';
import type { TrainingGraph } from '../grad/training';
import { DataSpec, Example, makeBatch } from '../data/jsonl';
import type { TrainingSession } from './session';
import { batchFeeds } from './feeds';

export interface HeadMetrics { loss: number; accuracy?: number; mae?: number; count: number }
export interface EvalRecord { step: number; loss: number; heads: Record<string, HeadMetrics> }

/** The value of a scalar float output (NaN when absent). */
export const scalar = (t: ort.Tensor | undefined): number => (t ? Number((t.data as Float32Array)[0]) : NaN);

/** Per-head loss and accuracy (CE) or mean absolute error (MSE) of the eval graph over a whole data set. */
export async function evaluate(session: TrainingSession, examples: Example[], spec: DataSpec, tg: Pick<TrainingGraph, 'heads' | 'outputs'>, batchSize: number): Promise<Omit<EvalRecord, 'step'>> {
  // `hits` is argmax hits (CE) or Σ|error| (MSE); `loss` is Σ loss·count (CE) or Σ error² (MSE).
  const sums: Record<string, { loss: number; hits: number; count: number }> = {};
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
    }
  }
  const heads: Record<string, HeadMetrics> = {};
  let loss = 0;
  for (const h of tg.heads) {
    const m = sums[h.head];
    const mean = (x: number) => (m.count ? x / m.count : 0);
    heads[h.head] = h.kind === 'mse' ? { loss: mean(m.loss), mae: mean(m.hits), count: m.count } : { loss: mean(m.loss), accuracy: mean(m.hits), count: m.count };
    loss += h.weight * heads[h.head].loss;
  }
  return { loss, heads };
}

