// Gradient builder, before differentiation: folds the LayerNorm decomposition that
// exporters emit below opset 17 back into one LayerNormalization-17 node, and the
// erf-GELU decomposition into one Gelu-20 node (fuseGelus, below).
//
//   m = ReduceMean(x, [-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2), [-1])
//   y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)
//
// Why: onnxruntime fuses this chain into LayerNormalization for inference, but in a
// training graph the backward reads its intermediates, so it stays nine kernels plus
// about fifteen in the backward. One LayerNormalization node (with its Mean and
// InvStdDev outputs, which the LayerNormalization rule reuses) computes the same values
// in one kernel, and its gradient needs fewer passes over the activations. Only exact
// matches are folded: every intermediate has only its consumer inside the pattern and
// is no graph output, eps is a constant scalar, gamma and beta are rank-1 tensors.
import { NodeProto } from '../onnx/proto';
import { A, attrInt, attrInts, makeAttrs } from '../onnx/attrs';
import { ConstantSource, constantNumbers } from './context';
import { nodeReads } from '../onnx/graph';
import type { Dim } from './types';

export interface FuseSource extends ConstantSource {
  /** Static shape of a tensor when known (ranks for axes, the hidden size for gamma and beta). */
  shape(name: string): Dim[] | undefined;
  uniqueName(base: string): string;
}

/**
 * Pattern-matching helpers shared by the fusions: the consumers of each tensor, `only(t, op)`
 * (t's single consumer, when it is a default-domain `op` and t is not a graph output, so the
 * intermediate may disappear), a node's first output, and a constant scalar's value.
 */
function matcher(nodes: NodeProto[], graphOutputs: Set<string>, src: FuseSource) {
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const i of nodeReads(n)) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(n);
      else consumers.set(i, [n]);
    }
  }
  const only = (t: string, op: string): NodeProto | undefined => {
    const c = consumers.get(t) ?? [];
    return c.length === 1 && c[0].op_type === op && !c[0].domain && !graphOutputs.has(t) ? c[0] : undefined;
  };
  const out = (n: NodeProto) => n.output?.[0] ?? '';
  const scalar = (t: string) => {
    const v = constantNumbers(src, t);
    return v && v.length === 1 ? v[0] : undefined;
  };
  return { consumers, only, out, scalar };
}

/** LayerNormalization needs opset 17; the caller raises the training opset when something was fused. */
export const LAYER_NORM_OPSET = 17;

/** Returns the node list with each matched decomposition replaced by one LayerNormalization. */
export function fuseLayerNorms(nodes: NodeProto[], graphOutputs: Set<string>, src: FuseSource): { nodes: NodeProto[]; fused: number } {
  const { consumers, only, out, scalar } = matcher(nodes, graphOutputs, src);
  const lastAxis = (n: NodeProto, x: string): boolean => {
    if (attrInt(n, 'keepdims', 1) !== 1) return false;
    const axes = n.input?.[1] ? constantNumbers(src, n.input[1]) : attrInts(n, 'axes');
    if (!axes || axes.length !== 1) return false;
    return axes[0] === -1 || axes[0] === (src.shape(x)?.length ?? NaN) - 1;
  };
  /** A rank-1 tensor as long as x's last axis (LayerNormalization's Scale and B; no broadcasting). */
  const hiddenVector = (t: string, x: string): boolean => {
    const s = src.shape(t);
    const last = src.shape(x)?.at(-1);
    return s?.length === 1 && typeof s[0] === 'number' && s[0] === last;
  };
  /** The other input of a binary node, when `t` is one of its two inputs. */
  const other = (n: NodeProto, t: string) => (n.input?.length === 2 ? (n.input[0] === t ? n.input[1] : n.input[1] === t ? n.input[0] : undefined) : undefined);

  const replace = new Map<NodeProto, NodeProto | null>();
  for (const mean of nodes) {
    if (mean.op_type !== 'ReduceMean' || mean.domain || replace.has(mean)) continue;
    const x = mean.input?.[0] ?? '';
    if (!x || !lastAxis(mean, x)) continue;
    const sub = only(out(mean), 'Sub');
    if (!sub || sub.input?.[0] !== x || sub.input?.[1] !== out(mean)) continue;
    const dUsers = consumers.get(out(sub)) ?? [];
    const pow = dUsers.find((n) => n.op_type === 'Pow');
    const div = dUsers.find((n) => n.op_type === 'Div');
    if (dUsers.length !== 2 || !pow || !div || graphOutputs.has(out(sub))) continue;
    if (pow.input?.[0] !== out(sub) || scalar(pow.input?.[1] ?? '') !== 2 || div.input?.[0] !== out(sub)) continue;
    const varMean = only(out(pow), 'ReduceMean');
    if (!varMean || !lastAxis(varMean, out(pow))) continue;
    const addEps = only(out(varMean), 'Add');
    const epsName = addEps && other(addEps, out(varMean));
    const eps = epsName ? scalar(epsName) : undefined;
    if (!addEps || eps === undefined) continue;
    const sqrt = only(out(addEps), 'Sqrt');
    if (!sqrt || only(out(sqrt), 'Div') !== div || div.input?.[1] !== out(sqrt)) continue;
    const mul = only(out(div), 'Mul');
    const gamma = mul && other(mul, out(div));
    const add = mul && only(out(mul), 'Add');
    const beta = add && other(add, out(mul));
    if (!gamma || !beta || !hiddenVector(gamma, x) || !hiddenVector(beta, x)) continue;

    const scope = (mean.name ?? '').replace(/\/[^/]*$/, '') || out(add);
    const name = src.uniqueName(`${scope}/LayerNormalization`);
    const fused: NodeProto = {
      name,
      op_type: 'LayerNormalization',
      input: [x, gamma, beta],
      output: [out(add), src.uniqueName(`${name}/mean`), src.uniqueName(`${name}/inv_std_dev`)],
      attribute: makeAttrs({ axis: A.int(-1), epsilon: A.float(eps) }),
    };
    for (const n of [mean, sub, pow, varMean, addEps, sqrt, div, mul]) replace.set(n, null);
    replace.set(add, fused);
  }
  return applyReplacements(nodes, replace);
}

/** Gelu needs opset 20; fuseGelus is applied only when raising the opset is safe (opsetRaiseBlockers). */
export const GELU_OPSET = 20;

/**
 * Returns the node list with each exact erf-GELU decomposition replaced by one Gelu
 * (approximate='none'):  y = 0.5 * x * (1 + Erf(x / sqrt2)), in the orders exporters use:
 * x/sqrt2 as Div(x, sqrt2) or Mul(x, 1/sqrt2); then ((x * a) * 0.5), ((x * 0.5) * a) or
 * (x * (a * 0.5)) with a = Erf(..) + 1, each binary op's operands in either order.
 * Why: the decomposition is five passes over the FFN's widest activation in the forward
 * and about eight in the backward (its intermediates are read there, so onnxruntime cannot
 * fuse it); Gelu is one kernel, and its rule (rules/Gelu.ts) needs fewer backward passes.
 * The same exactness conditions as the LayerNorm fusion apply.
 */
export function fuseGelus(nodes: NodeProto[], graphOutputs: Set<string>, src: FuseSource): { nodes: NodeProto[]; fused: number } {
  const { consumers, only, out, scalar } = matcher(nodes, graphOutputs, src);
  // float32 rounding of sqrt(2) and 1/sqrt(2) as exporters store them.
  const near = (v: number | undefined, want: number) => v !== undefined && Math.abs(v - want) <= 1e-6 * want;
  const other = (n: NodeProto, t: string) => (n.input?.length === 2 ? (n.input[0] === t ? n.input[1] : n.input[1] === t ? n.input[0] : undefined) : undefined);

  const replace = new Map<NodeProto, NodeProto | null>();
  for (const erf of nodes) {
    if (erf.op_type !== 'Erf' || erf.domain || replace.has(erf)) continue;
    const scaled = src.producer(erf.input?.[0] ?? '');
    if (!scaled || scaled.domain || (consumers.get(out(scaled)) ?? []).length !== 1 || graphOutputs.has(out(scaled))) continue;
    let x: string | undefined;
    if (scaled.op_type === 'Div' && near(scalar(scaled.input?.[1] ?? ''), Math.SQRT2)) x = scaled.input?.[0];
    else if (scaled.op_type === 'Mul') {
      const [p, q] = scaled.input ?? [];
      x = near(scalar(q ?? ''), Math.SQRT1_2) ? p : near(scalar(p ?? ''), Math.SQRT1_2) ? q : undefined;
    }
    if (!x) continue;
    const addOne = only(out(erf), 'Add');
    if (!addOne || scalar(other(addOne, out(erf)) ?? '') !== 1) continue;
    const a = out(addOne);
    const m1 = only(a, 'Mul');
    const o1 = m1 && other(m1, a);
    if (!m1 || !o1) continue;
    let last: NodeProto | undefined;
    let half: NodeProto | undefined;
    if (o1 === x) {
      // (x * a) * 0.5
      last = only(out(m1), 'Mul');
      if (last && scalar(other(last, out(m1)) ?? '') !== 0.5) last = undefined;
    } else if (scalar(o1) === 0.5) {
      // x * (a * 0.5)
      last = only(out(m1), 'Mul');
      if (last && other(last, out(m1)) !== x) last = undefined;
    } else {
      // (x * 0.5) * a
      half = src.producer(o1);
      const h = half && only(o1, 'Mul') === m1 && !half.domain && half.op_type === 'Mul' ? other(half, x) : undefined;
      if (!h || scalar(h) !== 0.5) continue;
      last = m1;
    }
    if (!last) continue;
    const chain = [scaled, erf, addOne, m1, ...(half ? [half] : []), last];
    if (chain.some((n) => replace.has(n))) continue;

    const scope = (erf.name ?? '').replace(/\/[^/]*$/, '') || out(last);
    const fused: NodeProto = { name: src.uniqueName(`${scope}/Gelu`), op_type: 'Gelu', input: [x], output: [out(last)], attribute: [] };
    for (const n of chain) replace.set(n, null);
    replace.set(last, fused);
  }
  return applyReplacements(nodes, replace);
}

/**
 * Ops whose meaning (or validity) changed between opset `from` and `to`, as ONNX's
 * Changelog lists them: raising a graph's opset across those versions would change or
 * break these nodes, so the caller keeps the model's opset instead.
 */
const CHANGED_SINCE: [string, number, (n: NodeProto) => boolean][] = [
  // `axes` moved from attribute to input at 18 (ReduceSum moved at 13, which we require).
  ...['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']
    .map((op): [string, number, (n: NodeProto) => boolean] => [op, 18, (n) => attrInts(n, 'axes') !== undefined]),
  ['Split', 18, () => true], // equal split needs num_outputs from 18
  ['Pad', 18, () => true],
  ['Resize', 18, () => true],
  ['BatchNormalization', 14, () => true], // training-mode outputs changed at 14
  ['RoiAlign', 16, () => true], // default coordinate_transformation_mode changed at 16
  ['GridSample', 20, () => true], // mode names changed at 20
  ['DFT', 20, () => true], // axis moved to an input at 20
  // Subgraphs would need the same check on every nested node.
  ['If', 0, () => true],
  ['Loop', 0, () => true],
  ['Scan', 0, () => true],
  ['SequenceMap', 0, () => true],
];

/** Default-domain nodes whose meaning changes if the graph's opset goes from `from` to `to`. */
export function opsetRaiseBlockers(nodes: NodeProto[], from: number, to: number): NodeProto[] {
  if (to <= from) return [];
  return nodes.filter((n) => {
    if (n.domain && n.domain !== 'ai.onnx') return false;
    return CHANGED_SINCE.some(([op, since, applies]) => n.op_type === op && (since === 0 || (from < since && since <= to)) && applies(n));
  });
}

function applyReplacements(nodes: NodeProto[], replace: Map<NodeProto, NodeProto | null>): { nodes: NodeProto[]; fused: number } {
  if (replace.size === 0) return { nodes, fused: 0 };
  const result: NodeProto[] = [];
  let fused = 0;
  for (const n of nodes) {
    const r = replace.get(n);
    if (r === undefined) result.push(n);
    else if (r) { result.push(r); fused++; }
  }
  return { nodes: result, fused };
}
