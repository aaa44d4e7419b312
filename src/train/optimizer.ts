// Training artifacts: the optimizer model (`optimizer_model.onnx`) in standard ONNX
// ops. It updates ONE flat vector holding every trainable parameter back to back
// (TrainingSession keeps params, grads and moments contiguous), so the update is a
// handful of elementwise kernels over N floats instead of hundreds of tiny ones.
//
// Inputs: learning_rate (float scalar), step (int64 scalar, 1-based: the number of
// this update, for bias correction), params [N], gradients [N], the state
// (exp_avg, exp_avg_sq for AdamW; momentum_buffer for SGD), and the
// hyperparameters as float scalars so a session can change them per step.
// Outputs: params_out, the updated state (`<state>_out`) and grad_norm (the global
// L2 norm of the gradients before clipping, as clip_grad_norm_ returns it).
//
// Semantics are PyTorch's: torch.optim.AdamW (decoupled weight decay, bias
// correction, no amsgrad), torch.optim.SGD (weight decay added to the gradient,
// momentum buffer = d on the first step, dampening 0, no nesterov) and
// torch.nn.utils.clip_grad_norm_ (scale = max_norm / (norm + 1e-6) when below 1;
// max_grad_norm <= 0 disables clipping).
//
// Every read of an input X happens in an ancestor of the node that writes
// X_out, so a session may bind X_out to X's own buffer (in-place update);
// `inPlacePairs` lists those pairs and `checkInPlaceSafe` verifies the property.
import { DataType, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto';
import { A, AttrValue, makeAttrs } from '../onnx/attrs';
import { makeTensor } from '../onnx/tensor';
import { Graph } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { kernelsFor } from './kernels/wasm';

export type OptimizerKind = 'adamw' | 'sgd';

export interface OptimizerHyperparameters {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  /** <= 0 disables clipping. */
  maxGradNorm: number;
}

/** PyTorch's defaults for each optimizer (AdamW's weight decay is 0.01 there too). */
export function defaultHyperparameters(kind: OptimizerKind): OptimizerHyperparameters {
  return kind === 'adamw'
    ? { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, momentum: 0, maxGradNorm: 0 }
    : { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, momentum: 0, maxGradNorm: 0 };
}

/** State vectors per optimizer, in checkpoint order (ORT names them momentum0, momentum1). */
export const OPTIMIZER_STATES: Record<OptimizerKind, readonly string[]> = {
  adamw: ['exp_avg', 'exp_avg_sq'],
  sgd: ['momentum_buffer'],
};

/** Scalar hyperparameter inputs of each optimizer model, with the field they come from. */
export const HYPERPARAMETER_INPUTS: Record<OptimizerKind, readonly [string, keyof OptimizerHyperparameters][]> = {
  adamw: [['beta1', 'beta1'], ['beta2', 'beta2'], ['eps', 'eps'], ['weight_decay', 'weightDecay'], ['max_grad_norm', 'maxGradNorm']],
  sgd: [['momentum', 'momentum'], ['weight_decay', 'weightDecay'], ['max_grad_norm', 'maxGradNorm']],
};

/** (input, output) pairs a session may alias: the output overwrites the input's buffer. */
export function inPlacePairs(kind: OptimizerKind): [string, string][] {
  return ['params', ...OPTIMIZER_STATES[kind]].map((n) => [n, `${n}_out`]);
}

/** Which optimizer a model is, from its inputs. */
export function optimizerKindOf(inputNames: readonly string[]): OptimizerKind {
  if (inputNames.includes('exp_avg')) return 'adamw';
  if (inputNames.includes('momentum_buffer')) return 'sgd';
  throw new GrlError(`not a grl-onnx optimizer model: it has neither 'exp_avg' nor 'momentum_buffer' inputs (inputs: ${inputNames.join(', ')})`);
}

/** Collects nodes and scalar constants of the optimizer graph with readable names. */
class OptGraph {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  /** Outputs are unique, so the node is named after its output. */
  op(opType: string, inputs: string[], out: string, attrs?: Record<string, AttrValue>): string {
    this.nodes.push({ name: `optimizer/${out}`, op_type: opType, input: inputs, output: [out], attribute: makeAttrs(attrs) });
    return out;
  }

  float(name: string, v: number): string {
    this.inits.push(makeTensor(name, DataType.FLOAT, [], Float32Array.of(v)));
    return name;
  }
}

function scalar(name: string, elemType: number): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: [] } } } };
}

function vector(name: string): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'N' }] } } } };
}

/** Clipped gradient and the pre-clip global norm (clip_grad_norm_ semantics). */
function clipGradients(g: OptGraph): { grad: string; norm: string } {
  const sumSq = g.op('ReduceSumSquare', ['gradients'], 'grad_sum_sq', { keepdims: A.int(0) });
  const norm = g.op('Sqrt', [sumSq], 'grad_norm');
  const denom = g.op('Add', [norm, g.float('clip_eps', 1e-6)], 'clip_denom');
  const coef = g.op('Div', ['max_grad_norm', denom], 'clip_coef');
  const one = 'one';
  const clamped = g.op('Min', [coef, one], 'clip_coef_clamped');
  const enabled = g.op('Greater', ['max_grad_norm', g.float('zero', 0)], 'clip_enabled');
  const scale = g.op('Where', [enabled, clamped, one], 'clip_scale');
  return { grad: g.op('Mul', ['gradients', scale], 'grad_clipped'), norm };
}

function adamwNodes(g: OptGraph, grad: string): void {
  const one = 'one';
  const stepf = g.op('Cast', ['step'], 'step_f', { to: A.int(DataType.FLOAT) });
  // Decoupled weight decay: θ ← θ·(1 − lr·wd), before the Adam update.
  const lrWd = g.op('Mul', ['learning_rate', 'weight_decay'], 'lr_wd');
  const decay = g.op('Sub', [one, lrWd], 'decay');
  const decayed = g.op('Mul', ['params', decay], 'params_decayed');
  // m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
  const oneMinusB1 = g.op('Sub', [one, 'beta1'], 'one_minus_beta1');
  const oneMinusB2 = g.op('Sub', [one, 'beta2'], 'one_minus_beta2');
  const m = g.op('Add', [g.op('Mul', ['exp_avg', 'beta1'], 'exp_avg_scaled'), g.op('Mul', [grad, oneMinusB1], 'grad_scaled')], 'exp_avg_out');
  const gg = g.op('Mul', [grad, grad], 'grad_sq');
  const v = g.op('Add', [g.op('Mul', ['exp_avg_sq', 'beta2'], 'exp_avg_sq_scaled'), g.op('Mul', [gg, oneMinusB2], 'grad_sq_scaled')], 'exp_avg_sq_out');
  // step_size = lr / (1 − β1^t) ; denom = √v / √(1 − β2^t) + eps
  const bc1 = g.op('Sub', [one, g.op('Pow', ['beta1', stepf], 'beta1_pow')], 'bias_correction1');
  const bc2 = g.op('Sub', [one, g.op('Pow', ['beta2', stepf], 'beta2_pow')], 'bias_correction2');
  const stepSize = g.op('Div', ['learning_rate', bc1], 'step_size');
  const bc2Sqrt = g.op('Sqrt', [bc2], 'bias_correction2_sqrt');
  const denom = g.op('Add', [g.op('Div', [g.op('Sqrt', [v], 'exp_avg_sq_sqrt'), bc2Sqrt], 'exp_avg_sq_hat'), 'eps'], 'denom');
  const update = g.op('Mul', [g.op('Div', [m, denom], 'direction'), stepSize], 'update');
  g.op('Sub', [decayed, update], 'params_out');
}

function sgdNodes(g: OptGraph, grad: string): void {
  // d = g + wd·θ ; buf ← momentum·buf + d ; θ ← θ − lr·buf. The buffer starts at zero,
  // so the first step gives buf = d exactly, as PyTorch's clone(d); with momentum 0
  // buf is d exactly (0·buf + d), matching plain SGD. `step` is unused here.
  const d = g.op('Add', [grad, g.op('Mul', ['params', 'weight_decay'], 'decay_term')], 'd_p');
  const buf = g.op('Add', [g.op('Mul', ['momentum_buffer', 'momentum'], 'buf_scaled'), d], 'momentum_buffer_out');
  g.op('Sub', ['params', g.op('Mul', [buf, 'learning_rate'], 'update')], 'params_out');
}

/** The flat optimizer model for `kind`. */
export function buildOptimizerModel(kind: OptimizerKind): ModelProto {
  const g = new OptGraph();
  g.float('one', 1);
  const { grad, norm } = clipGradients(g);
  if (kind === 'adamw') adamwNodes(g, grad);
  else sgdNodes(g, grad);
  const states = OPTIMIZER_STATES[kind];
  const inputs: ValueInfoProto[] = [
    scalar('learning_rate', DataType.FLOAT),
    scalar('step', DataType.INT64),
    vector('params'),
    vector('gradients'),
    ...states.map(vector),
    ...HYPERPARAMETER_INPUTS[kind].map(([n]) => scalar(n, DataType.FLOAT)),
  ];
  const outputs: ValueInfoProto[] = [vector('params_out'), ...states.map((s) => vector(`${s}_out`)), scalar(norm, DataType.FLOAT)];
  return {
    ir_version: 8,
    producer_name: 'grl-onnx',
    doc_string: `grl-onnx ${kind} optimizer over one flat parameter vector (PyTorch semantics)`,
    opset_import: [{ domain: '', version: 17 }],
    graph: { name: `${kind}_optimizer`, node: g.nodes, input: inputs, output: outputs, initializer: g.inits },
    metadata_props: [{ key: 'grl-onnx.optimizer', value: kind }],
  };
}

/**
 * Check that binding each `X_out` to `X`'s buffer is safe: every node reading X must be
 * an ancestor of (or be) the node writing X_out, so it has run before the write.
 */
export function checkInPlaceSafe(model: ModelProto, pairs: [string, string][], source = 'optimizer model'): void {
  const graph = new Graph(model.graph ?? {});
  for (const [input, output] of pairs) {
    const writer = graph.producer(output);
    if (!writer) throw new GrlError(`${source}: no node produces '${output}'`);
    const before = graph.ancestors(output);
    for (const reader of graph.consumersOf(input)) {
      if (!before.has(reader)) throw new GrlError(`${source}: node ${reader.name ?? reader.op_type} reads '${input}' but does not run before '${output}' is written; it cannot be updated in place`);
    }
  }
}

export interface FlatOptimizerState {
  params: Float32Array;
  gradients: Float32Array;
  /** OPTIMIZER_STATES[kind] order. */
  states: Float32Array[];
  learningRate: number;
  /** 1-based number of this update. */
  step: number;
  hyper: OptimizerHyperparameters;
}

/**
 * The same update as the optimizer model, fused into one pass over the buffers in place
 * after a pass for the gradient norm. When the buffers live in a KernelArena it runs in
 * WebAssembly SIMD in float32, operation for operation as torch.optim does (~6 ms for
 * 5.4M parameters); otherwise in one JS loop (~30 ms). The ONNX optimizer graph is
 * slower than both on CPU (scripts/bench-session.js), and onnxruntime-node's binding
 * copies every fetched output, which this path avoids. Returns the pre-clip gradient
 * norm; non-finite gradients leave parameters and moments untouched.
 */
export function fusedOptimizerStep(kind: OptimizerKind, s: FlatOptimizerState): number {
  const n = s.params.length;
  if (s.gradients.length !== n || s.states.length !== OPTIMIZER_STATES[kind].length || s.states.some((x) => x.length !== n)) {
    throw new GrlError(`${kind} update: parameters, gradients and the ${OPTIMIZER_STATES[kind].join(', ')} buffers must all hold ${n} floats`);
  }
  const kernels = kernelsFor(s.params, s.gradients, ...s.states);
  return kernels ? wasmStep(kernels, kind, s) : jsStep(kind, s);
}

function clipScale(h: OptimizerHyperparameters, norm: number): number {
  return h.maxGradNorm > 0 ? Math.min(h.maxGradNorm / (norm + 1e-6), 1) : 1;
}

function wasmStep(k: NonNullable<ReturnType<typeof kernelsFor>>, kind: OptimizerKind, s: FlatOptimizerState): number {
  const { params: p, gradients: g, hyper: h, learningRate: lr } = s;
  const n = p.length;
  const norm = Math.sqrt(k.sumsq(g.byteOffset, n));
  if (!Number.isFinite(norm)) return norm;
  const scale = clipScale(h, norm);
  if (kind === 'adamw') {
    const [m, v] = s.states;
    k.adamw(p.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset, n, scale, 1 - lr * h.weightDecay,
      h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, -(lr / (1 - h.beta1 ** s.step)), Math.sqrt(1 - h.beta2 ** s.step), h.eps);
  } else {
    k.sgd(p.byteOffset, g.byteOffset, s.states[0].byteOffset, n, scale, h.weightDecay, h.momentum, -lr);
  }
  return norm;
}

function jsStep(kind: OptimizerKind, s: FlatOptimizerState): number {
  const { params: p, gradients: g, hyper: h, learningRate: lr } = s;
  const n = p.length;
  let sumSq = 0;
  let scale = 1;
  if (h.maxGradNorm > 0) {
    for (let i = 0; i < n; i++) sumSq += g[i] * g[i];
    scale = clipScale(h, Math.sqrt(sumSq));
  }
  // The global norm is needed for the report anyway; without clipping it is summed in a
  // separate tight pass so the update loop has no per-element branch.
  if (!(h.maxGradNorm > 0)) for (let i = 0; i < n; i++) sumSq += g[i] * g[i];
  // Non-finite gradients would poison parameters and moments for good: leave them untouched.
  if (!Number.isFinite(sumSq)) return Math.sqrt(sumSq);
  if (kind === 'adamw') {
    const [m, v] = s.states;
    const decay = 1 - lr * h.weightDecay;
    const stepSize = lr / (1 - h.beta1 ** s.step);
    // sqrt(v̂) = sqrt(v) / sqrt(1 − β2^t): a multiply by the precomputed reciprocal instead of a
    // division per element (within one float32 ulp of PyTorch's division).
    const invBc2Sqrt = 1 / Math.sqrt(1 - h.beta2 ** s.step);
    const b1 = h.beta1, b2 = h.beta2, c1 = 1 - b1, c2 = 1 - b2, eps = h.eps;
    for (let i = 0; i < n; i++) {
      const gi = g[i] * scale;
      const mi = (m[i] = b1 * m[i] + c1 * gi);
      const vi = (v[i] = b2 * v[i] + c2 * gi * gi);
      p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) * invBc2Sqrt + eps);
    }
  } else {
    const [buf] = s.states;
    const mom = h.momentum, wd = h.weightDecay;
    for (let i = 0; i < n; i++) {
      const b = (buf[i] = mom * buf[i] + (g[i] * scale + wd * p[i]));
      p[i] = p[i] - lr * b;
    }
  }
  return Math.sqrt(sumSq);
}
