// Test fixture for src/train: a tiny GRL model built by hand, with its training and
// eval graphs written in the TrainingGraph contract of src/grad/training.ts (until
// the real builder is used), plus an independent plain-JS forward/backward.
//
//   h = x·E + c            (E trainable encoder, c frozen bias)
//   r = GradientReversal(h) (head 'adv')
//   logits = r·W + b       (W, b trainable head)
//   loss = CE(logits, adv) with ignore_index -100, mean over non-ignored rows
//
// Training graph inputs: x, adv, grl.adv.lambda, E, W, b; outputs loss, loss.adv,
// correct.adv, count.adv, E_grad, W_grad, b_grad. dE = xᵀ·(−λ·dlogits·Wᵀ).
import { DataType, FunctionProto, ModelProto, NodeProto, TensorProto } from '../../src/onnx/proto';
import { A, makeAttrs, AttrValue } from '../../src/onnx/attrs';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor';
import { GRL_DOMAIN, GRL_OP } from '../../src/patch/grl';
import { F, I64, makeModel, randn, rng, valueInfo } from '../helpers/build';

export const D = 3;
export const H = 4;
export const C = 3;

export interface Weights { E: Float32Array; c: Float32Array; W: Float32Array; b: Float32Array }

export function initialWeights(seed = 1): Weights {
  const r = rng(seed);
  return { E: randn(r, D * H, 0.5), c: randn(r, H, 0.1), W: randn(r, H * C, 0.5), b: randn(r, C, 0.1) };
}

function node(op: string, inputs: string[], output: string, attrs?: Record<string, AttrValue>, domain?: string): NodeProto {
  const n: NodeProto = { name: output, op_type: op, input: inputs, output: [output], attribute: makeAttrs(attrs) };
  if (domain) n.domain = domain;
  return n;
}

const grlFunction: FunctionProto = {
  name: GRL_OP,
  domain: GRL_DOMAIN,
  input: ['X'],
  output: ['Y'],
  attribute: ['lambda', 'head'],
  node: [{ op_type: 'Identity', input: ['X'], output: ['Y'] }],
  opset_import: [{ domain: '', version: 17 }],
};

/** The original (inference) model with a GradientReversal node. */
export function inferenceModel(w: Weights): ModelProto {
  const m = makeModel({
    nodes: [
      node('MatMul', ['x', 'E'], 'xE'),
      node('Add', ['xE', 'c'], 'h'),
      node(GRL_OP, ['h'], 'r', { lambda: A.float(0.5), head: A.string('adv') }, GRL_DOMAIN),
      node('MatMul', ['r', 'W'], 'rW'),
      node('Add', ['rW', 'b'], 'logits'),
    ],
    inputs: [valueInfo('x', F, ['batch', D])],
    outputs: [valueInfo('logits', F, ['batch', C])],
    initializers: [float32Tensor('E', [D, H], w.E), float32Tensor('c', [H], w.c), float32Tensor('W', [H, C], w.W), float32Tensor('b', [C], w.b)],
    extraOpsets: [{ domain: GRL_DOMAIN, version: 1 }],
  });
  m.functions = [grlFunction];
  return m;
}

/** Forward and loss nodes shared by the training and eval graphs. */
function forwardAndLoss(): NodeProto[] {
  return [
    node('MatMul', ['x', 'E'], 'xE'),
    node('Add', ['xE', 'c'], 'h'),
    node('MatMul', ['h', 'W'], 'hW'),
    node('Add', ['hW', 'b'], 'logits'),
    node('Equal', ['adv', 'ignore_index'], 'ignored'),
    node('Not', ['ignored'], 'valid'),
    node('Cast', ['valid'], 'valid_f', { to: A.int(DataType.FLOAT) }),
    node('Where', ['valid', 'adv', 'zero_i64'], 'safe_labels'),
    node('OneHot', ['safe_labels', 'depth', 'onehot_values'], 'onehot', { axis: A.int(-1) }),
    node('LogSoftmax', ['logits'], 'logp', { axis: A.int(-1) }),
    node('Mul', ['onehot', 'logp'], 'picked'),
    node('ReduceSum', ['picked', 'axis1'], 'neg_nll', { keepdims: A.int(0) }),
    node('Mul', ['neg_nll', 'valid_f'], 'neg_nll_valid'),
    node('ReduceSum', ['neg_nll_valid'], 'neg_sum', { keepdims: A.int(0) }),
    node('ReduceSum', ['valid_f'], 'count.adv', { keepdims: A.int(0) }),
    node('Max', ['count.adv', 'one_f'], 'denominator'),
    node('Div', ['neg_sum', 'denominator'], 'neg_loss'),
    node('Neg', ['neg_loss'], 'loss.adv'),
    node('Identity', ['loss.adv'], 'loss'),
    node('ArgMax', ['logits'], 'pred', { axis: A.int(1), keepdims: A.int(0) }),
    node('Equal', ['pred', 'adv'], 'hit'),
    node('And', ['hit', 'valid'], 'hit_valid'),
    node('Cast', ['hit_valid'], 'hit_f', { to: A.int(DataType.FLOAT) }),
    node('ReduceSum', ['hit_f'], 'correct.adv', { keepdims: A.int(0) }),
  ];
}

function backward(): NodeProto[] {
  return [
    node('Softmax', ['logits'], 'probs', { axis: A.int(-1) }),
    node('Sub', ['probs', 'onehot'], 'probs_minus_onehot'),
    node('Unsqueeze', ['valid_f', 'axis1'], 'valid_col'),
    node('Mul', ['probs_minus_onehot', 'valid_col'], 'masked'),
    node('Div', ['masked', 'denominator'], 'dlogits'),
    node('Transpose', ['h'], 'hT', { perm: A.ints([1, 0]) }),
    node('MatMul', ['hT', 'dlogits'], 'W_grad'),
    node('ReduceSum', ['dlogits', 'axis0'], 'b_grad', { keepdims: A.int(0) }),
    node('Transpose', ['W'], 'WT', { perm: A.ints([1, 0]) }),
    node('MatMul', ['dlogits', 'WT'], 'dh'),
    node('Neg', ['grl.adv.lambda'], 'neg_lambda'),
    node('Mul', ['dh', 'neg_lambda'], 'dh_reversed'),
    node('Transpose', ['x'], 'xT', { perm: A.ints([1, 0]) }),
    node('MatMul', ['xT', 'dh_reversed'], 'E_grad'),
  ];
}

function constants(): TensorProto[] {
  return [
    int64Tensor('ignore_index', [], [-100]),
    int64Tensor('zero_i64', [], [0]),
    int64Tensor('depth', [], [C]),
    float32Tensor('onehot_values', [2], [0, 1]),
    int64Tensor('axis1', [1], [1]),
    int64Tensor('axis0', [1], [0]),
    float32Tensor('one_f', [], [1]),
  ];
}

const lossOutputs = () => [valueInfo('loss', F, []), valueInfo('loss.adv', F, []), valueInfo('correct.adv', F, []), valueInfo('count.adv', F, [])];

function graphInputs() {
  return [
    valueInfo('x', F, ['batch', D]),
    valueInfo('adv', I64, ['batch']),
    valueInfo('grl.adv.lambda', F, []),
    valueInfo('E', F, [D, H]),
    valueInfo('W', F, [H, C]),
    valueInfo('b', F, [C]),
  ];
}

export function trainingModel(w: Weights): ModelProto {
  return makeModel({
    nodes: [...forwardAndLoss(), ...backward()],
    inputs: graphInputs(),
    outputs: [...lossOutputs(), valueInfo('E_grad', F, [D, H]), valueInfo('W_grad', F, [H, C]), valueInfo('b_grad', F, [C])],
    initializers: [...constants(), float32Tensor('c', [H], w.c)],
  });
}

export function evalModel(w: Weights): ModelProto {
  const used = constants().filter((t) => t.name !== 'axis0');
  return makeModel({ nodes: forwardAndLoss(), inputs: graphInputs(), outputs: lossOutputs(), initializers: [...used, float32Tensor('c', [H], w.c)] });
}

/** The TrainingGraph metadata for this model (the contract of src/grad/training.ts). */
export function trainingGraphFor(w: Weights) {
  return {
    training: trainingModel(w),
    eval: evalModel(w),
    params: [
      { name: 'E', dims: [D, H], trainable: true },
      { name: 'c', dims: [H], trainable: false },
      { name: 'W', dims: [H, C], trainable: true },
      { name: 'b', dims: [C], trainable: true },
    ],
    modelInputs: ['x'],
    heads: [{ head: 'adv', labelInput: 'adv', output: 'logits', kind: 'ce' as const, weight: 1, tokenLevel: false, numClasses: C }],
    lambdas: [{ head: 'adv', input: 'grl.adv.lambda', node: 'r', default: 0.5 }],
    outputs: {
      loss: 'loss',
      headLoss: { adv: 'loss.adv' },
      correct: { adv: 'correct.adv' },
      count: { adv: 'count.adv' },
      grads: { E: 'E_grad', W: 'W_grad', b: 'b_grad' },
    },
  };
}

/** Plain float64 forward + backward of the same model: loss and gradients of E, W, b. */
export function referenceGrads(w: { E: ArrayLike<number>; c: ArrayLike<number>; W: ArrayLike<number>; b: ArrayLike<number> }, x: ArrayLike<number>, labels: number[], lambda: number) {
  const B = labels.length;
  const h = new Float64Array(B * H);
  const dl = new Float64Array(B * C);
  let count = 0;
  let lossSum = 0;
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < H; j++) {
      let s = w.c[j];
      for (let k = 0; k < D; k++) s += x[i * D + k] * w.E[k * H + j];
      h[i * H + j] = s;
    }
  }
  for (let i = 0; i < B; i++) {
    if (labels[i] === -100) continue;
    count++;
    const z = Array.from({ length: C }, (_, c) => { let s = w.b[c]; for (let j = 0; j < H; j++) s += h[i * H + j] * w.W[j * C + c]; return s; });
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0));
    lossSum += lse - z[labels[i]];
    for (let c = 0; c < C; c++) dl[i * C + c] = Math.exp(z[c] - lse) - (c === labels[i] ? 1 : 0);
  }
  const denom = Math.max(count, 1);
  for (let i = 0; i < dl.length; i++) dl[i] /= denom;
  const gW = new Float64Array(H * C);
  const gb = new Float64Array(C);
  const gE = new Float64Array(D * H);
  for (let i = 0; i < B; i++) {
    for (let c = 0; c < C; c++) {
      gb[c] += dl[i * C + c];
      for (let j = 0; j < H; j++) gW[j * C + c] += h[i * H + j] * dl[i * C + c];
    }
    for (let j = 0; j < H; j++) {
      let dh = 0;
      for (let c = 0; c < C; c++) dh += dl[i * C + c] * w.W[j * C + c];
      for (let k = 0; k < D; k++) gE[k * H + j] += x[i * D + k] * -lambda * dh;
    }
  }
  return { loss: lossSum / denom, E: gE, W: gW, b: gb };
}
