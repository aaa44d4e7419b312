// Gradient builder: the losses of the training graph, with their gradients
// w.r.t. the head outputs built directly (fused) rather than differentiated,
// so they seed the reverse-mode driver.
//
// Softmax cross-entropy matches PyTorch's
//   F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1), ignore_index=-100)
// (mean over non-ignored positions of the whole batch), over the last axis of
// [B, T, C] (token level) or [B, C] (sequence level) logits. A batch where
// every label is ignored gives loss 0 and gradient 0, never NaN.
//
// Mean squared error ignores NaN labels (padding, `null` targets in the data):
// it is PyTorch's `F.mse_loss(pred[mask], label[mask])` with mask = ~isnan(label),
// i.e. the mean of (pred − label)² over the non-NaN labels of the whole batch.
// Same guarantees as cross-entropy: an all-NaN batch gives loss 0 and gradient 0,
// and an ignored element's gradient is exactly 0. With no NaN label every value
// is the same float32 result as the plain F.mse_loss (Where passes diff through
// unchanged, and the count is exact like Size).
import { A, AttrValue, makeAttrs } from '../onnx/attrs';
import { makeTensor } from '../onnx/tensor';
import { DataType } from '../onnx/proto';
import type { Emitter } from './emit';

export type LossKind = 'ce' | 'mse';

export interface LossSpec {
  head: string;
  kind: LossKind;
  /** The head's output (logits for 'ce', predictions for 'mse'). */
  output: string;
  /** Graph input with the labels: int64 (-100 = ignore) for 'ce', float like the output (NaN = ignore) for 'mse'. */
  labels: string;
  weight: number;
  /** Number of classes when known statically (saves a Shape node). */
  numClasses?: number;
}

export interface LossTensors {
  /** The unweighted mean loss, a float scalar. */
  loss: string;
  /** weight · dLoss/dOutput, shaped like the output: the seed of the backward pass. */
  seed: string;
  /** Argmax hits among non-ignored labels ('ce' only), and the number of non-ignored labels (float scalars). */
  correct?: string;
  count?: string;
}

/** Output names the caller wants exactly (e.g. `loss.pos`); unique names are the caller's job. */
export interface LossNames {
  loss: string;
  correct?: string;
  count?: string;
}

const IGNORE_INDEX = -100;

/** A node with an exactly named output. */
function named(emit: Emitter, opType: string, inputs: string[], output: string, attrs?: Record<string, AttrValue | undefined>): string {
  emit.nodes.push({ name: emit.name(`${output}/${opType}`), op_type: opType, input: inputs, output: [output], attribute: makeAttrs(attrs) });
  return output;
}

/** A constant 1-D float tensor. */
function floats(emit: Emitter, values: number[], what: string): string {
  const name = emit.name(what);
  emit.initializers.push(makeTensor(name, DataType.FLOAT, [values.length], Float32Array.from(values)));
  return name;
}

/** Sum of every element, as a scalar (ReduceSum without axes reduces all). */
function sumAll(emit: Emitter, x: string, what: string): string {
  return emit.op('ReduceSum', [x], { keepdims: A.int(0) }, what);
}

export function crossEntropy(emit: Emitter, spec: LossSpec, names: LossNames): LossTensors {
  const { output: logits, labels } = spec;
  const valid = emit.op('Not', [emit.op('Equal', [labels, emit.int64s([IGNORE_INDEX], 'ignore_index')], undefined, 'ignored')], undefined, 'valid');
  const mask = emit.op('Cast', [valid], { to: A.int(DataType.FLOAT) }, 'mask');
  const count = names.count ? named(emit, 'ReduceSum', [mask], names.count, { keepdims: A.int(0) }) : sumAll(emit, mask, 'count');
  // max(count, 1): an all-ignored batch divides 0 by 1 instead of 0 by 0.
  const denom = emit.op('Max', [count, emit.float(1, 'one')], undefined, 'denom');
  const safeLabels = emit.op('Where', [valid, labels, emit.int64s([0], 'zero')], undefined, 'safe_labels');
  const logp = emit.op('LogSoftmax', [logits], { axis: A.int(-1) }, 'log_probs');
  const picked = emit.op('GatherElements', [logp, emit.unsqueeze(safeLabels, [-1], 'label_index')], { axis: A.int(-1) }, 'picked');
  const nll = emit.op('Mul', [emit.squeeze(picked, [-1], 'picked_log_prob'), mask], undefined, 'masked_log_prob');
  const total = sumAll(emit, nll, 'sum_log_prob');
  const loss = named(emit, 'Div', [emit.op('Neg', [total], undefined, 'neg_sum'), denom], names.loss);

  // d loss / d logits = (softmax − onehot(label)) · mask / max(count, 1), times the head's weight.
  const probs = emit.op('Exp', [logp], undefined, 'probs');
  const depth = spec.numClasses !== undefined ? emit.int64s([spec.numClasses], 'num_classes') : emit.op('Shape', [logits], { start: A.int(-1) }, 'num_classes');
  const oneHot = emit.op('OneHot', [safeLabels, depth, floats(emit, [0, 1], 'off_on')], { axis: A.int(-1) }, 'one_hot');
  const diff = emit.op('Sub', [probs, oneHot], undefined, 'probs_minus_one_hot');
  const scale = emit.op('Div', [emit.float(spec.weight, 'weight'), denom], undefined, 'scale');
  const rowScale = emit.unsqueeze(emit.op('Mul', [mask, scale], undefined, 'row_scale'), [-1], 'row_scale_3d');
  const seed = emit.op('Mul', [diff, rowScale], undefined, 'd_logits');

  // Argmax accuracy for progress display: an ignored label (-100) never equals an argmax.
  const argmax = emit.op('ArgMax', [logits], { axis: A.int(-1), keepdims: A.int(0) }, 'argmax');
  const hits = emit.op('Cast', [emit.op('Equal', [argmax, labels], undefined, 'hit')], { to: A.int(DataType.FLOAT) }, 'hits');
  const correct = names.correct ? named(emit, 'ReduceSum', [hits], names.correct, { keepdims: A.int(0) }) : sumAll(emit, hits, 'correct');
  return { loss, seed, correct, count };
}

export function meanSquaredError(emit: Emitter, spec: LossSpec, names: LossNames): LossTensors {
  const diff = emit.op('Sub', [spec.output, spec.labels], undefined, 'error');
  // IsNaN on float32 is the same from opset 9 to 20 (later versions only add types); training graphs are ≥ 16.
  const ignored = emit.op('IsNaN', [spec.labels], undefined, 'ignored');
  const error = emit.op('Where', [ignored, emit.float(0, 'zero'), diff], undefined, 'masked_error');
  // Counted in int64, not as a float32 sum of ones (which stops growing at 2^24): exact, like Size was.
  const valid = emit.op('Cast', [emit.op('Not', [ignored], undefined, 'valid')], { to: A.int(DataType.INT64) }, 'valid_int');
  const countInt = emit.op('ReduceSum', [valid], { keepdims: A.int(0) }, 'count_int');
  const n = names.count ? named(emit, 'Cast', [countInt], names.count, { to: A.int(DataType.FLOAT) }) : emit.op('Cast', [countInt], { to: A.int(DataType.FLOAT) }, 'n');
  // max(n, 1): an all-NaN batch divides 0 by 1 instead of 0 by 0.
  const denom = emit.op('Max', [n, emit.float(1, 'one')], undefined, 'denom');
  const sse = sumAll(emit, emit.op('Mul', [error, error], undefined, 'squared'), 'sse');
  const loss = named(emit, 'Div', [sse, denom], names.loss);
  const scale = emit.op('Div', [emit.float(2 * spec.weight, 'two_weight'), denom], undefined, 'scale');
  const seed = emit.op('Mul', [error, scale], undefined, 'd_output');
  // Returned only when named: metricOutputs (training-losses.ts) records any returned count in outputs.count.
  return names.count ? { loss, seed, count: n } : { loss, seed };
}

export function buildLoss(emit: Emitter, spec: LossSpec, names: LossNames): LossTensors {
  return spec.kind === 'ce' ? crossEntropy(emit, spec, names) : meanSquaredError(emit, spec, names);
}
