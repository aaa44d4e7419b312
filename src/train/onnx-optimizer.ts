// Training: the update through the flat optimizer model (optimizerBackend 'onnx',
// optimizer.ts builds it). It runs over a TrainingSession's contiguous buffers with each
// output bound to its own input's buffer (safe: checkInPlaceSafe), so parameters and
// moments are updated in place; onnxruntime-node 1.30 still returns a copy of every fetched
// output (3 for AdamW, 2 for SGD), which is dropped.
import * as ort from 'onnxruntime-node';
import { GrlError } from '../onnx/errors';
import { HYPERPARAMETER_INPUTS, OPTIMIZER_STATES, OptimizerHyperparameters, OptimizerKind } from './optimizer';
import type { Feeds, Fetches, GradientBuffers } from './gradient-buffers';
import { scalarTensor } from './session-settings';

export class OnnxOptimizer {
  private readonly lrFeed = scalarTensor(0);
  private readonly stepFeed = new ort.Tensor('int64', BigInt64Array.of(1n), []);
  private readonly hyperFeeds: Record<string, ort.Tensor> = {};

  constructor(readonly session: ort.InferenceSession) {}

  /** Throws unless the model takes every input `kind`'s update needs. */
  validate(kind: OptimizerKind): void {
    const want = ['learning_rate', 'step', 'params', 'gradients', ...OPTIMIZER_STATES[kind]];
    const missing = want.filter((n) => !this.session.inputNames.includes(n));
    if (missing.length) throw new GrlError(`optimizer model lacks inputs ${missing.join(', ')}`);
  }

  /** One update of `buffers` in place (1-based `step`); returns the gradients' global L2 norm. */
  async run(kind: OptimizerKind, buffers: GradientBuffers, lr: number, step: number, hyper: OptimizerHyperparameters): Promise<number> {
    (this.lrFeed.data as Float32Array)[0] = lr;
    (this.stepFeed.data as BigInt64Array)[0] = BigInt(step);
    const feeds: Feeds = { learning_rate: this.lrFeed, step: this.stepFeed, params: buffers.paramsFlat, gradients: buffers.gradsFlat };
    const fetches: Fetches = { params_out: buffers.paramsFlat, grad_norm: null };
    OPTIMIZER_STATES[kind].forEach((name, k) => {
      feeds[name] = buffers.statesFlat[k];
      fetches[`${name}_out`] = buffers.statesFlat[k];
    });
    for (const [input, field] of HYPERPARAMETER_INPUTS[kind]) {
      const t = (this.hyperFeeds[input] ??= scalarTensor(0));
      (t.data as Float32Array)[0] = hyper[field];
      feeds[input] = t;
    }
    const result = await this.session.run(feeds, fetches);
    return (result.grad_norm.data as Float32Array)[0];
  }
}
