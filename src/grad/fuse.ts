// Gradient builder, before differentiation: folds the LayerNorm decomposition that
// exporters emit below opset 17 back into one LayerNormalization-17 node.
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
import type { Dim } from './types';

export interface FuseSource extends ConstantSource {
  /** Static shape of a tensor when known (ranks for axes, the hidden size for gamma and beta). */
  shape(name: string): Dim[] | undefined;
  uniqueName(base: string): string;
}

/** LayerNormalization needs opset 17; the caller raises the training opset when something was fused. */
export const LAYER_NORM_OPSET = 17;

/** Returns the node list with each matched decomposition replaced by one LayerNormalization. */
export function fuseLayerNorms(nodes: NodeProto[], graphOutputs: Set<string>, src: FuseSource): { nodes: NodeProto[]; fused: number } {
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const only = (t: string, op: string): NodeProto | undefined => {
    const c = consumers.get(t) ?? [];
    return c.length === 1 && c[0].op_type === op && !c[0].domain && !graphOutputs.has(t) ? c[0] : undefined;
  };
  const out = (n: NodeProto) => n.output?.[0] ?? '';
  const scalar = (t: string) => {
    const v = constantNumbers(src, t);
    return v && v.length === 1 ? v[0] : undefined;
  };
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
