// Shape inference, part 6: ops that compute along axes: MatMul, Gemm, Einsum,
// the normalizations with statistics outputs, reductions and TopK.
import type { NodeProto } from '../proto';
import { DataType } from '../proto';
import { attrInt, attrInts, attrString } from '../attrs';
import { Dim, broadcastShapes, norm, unknownDims } from './dims';
import { Env, Result, ShapeRule, sameRule, staticLength } from './env';

const REDUCE = ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

export const COMPUTE_RULES: Record<string, ShapeRule> = {
  MatMul: (node, env) => [[matmulShape(env.shape(node.input?.[0]), env.shape(node.input?.[1]))], [env.dtype(node.input?.[0])]],
  Gemm: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const sb = env.shape(node.input?.[1]);
    const t0 = env.dtype(node.input?.[0]);
    if (!s0 || !sb || s0.length !== 2 || sb.length !== 2) return [[[null, null]], [t0]];
    const m = attrInt(node, 'transA', 0) ? s0[1] : s0[0];
    const n = attrInt(node, 'transB', 0) ? sb[0] : sb[1];
    return [[[m, n]], [t0]];
  },
  Einsum: (node, env) => [[einsumShape(attrString(node, 'equation') ?? '', (node.input ?? []).map((i) => env.shape(i)))], [env.dtype(node.input?.[0])]],
  LayerNormalization: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const t0 = env.dtype(node.input?.[0]);
    if (!s0) return [[undefined, undefined, undefined], [t0, DataType.FLOAT, DataType.FLOAT]];
    const axis = norm(attrInt(node, 'axis', -1), s0.length);
    const stat = s0.map((d, k) => (k >= axis ? 1 : d));
    return [[s0, stat, stat], [t0, DataType.FLOAT, DataType.FLOAT]];
  },
  BatchNormalization: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const c = s0 && s0.length > 1 ? [s0[1]] : [null];
    const t0 = env.dtype(node.input?.[0]);
    return [[s0, c, c], [t0, t0, t0]];
  },
  ...sameRule(REDUCE, (node, env) => reduceShape(node, env, env.dtype(node.input?.[0]))),
  ...sameRule(['ArgMax', 'ArgMin'], (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    if (!s0) return [[undefined], [DataType.INT64]];
    const ax = norm(attrInt(node, 'axis', 0), s0.length);
    const keep = attrInt(node, 'keepdims', 1);
    return [[keep ? s0.map((d, k) => (k === ax ? 1 : d)) : s0.filter((_, k) => k !== ax)], [DataType.INT64]];
  }),
  TopK: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const t0 = env.dtype(node.input?.[0]);
    if (!s0) return [[undefined, undefined], [t0, DataType.INT64]];
    const ax = norm(attrInt(node, 'axis', -1), s0.length);
    const k = env.ints(node.input?.[1]);
    const res = s0.map((d, j) => (j === ax ? (k ? k[0] : null) : d));
    return [[res, res], [t0, DataType.INT64]];
  },
};

function reduceShape(node: NodeProto, env: Env, dt: number | undefined): Result {
  const inp = node.input ?? [];
  const s0 = env.shape(inp[0]);
  if (!s0) return [[undefined], [dt]];
  const keep = attrInt(node, 'keepdims', 1);
  const axes = inp[1] ? env.ints(inp[1]) : attrInts(node, 'axes');
  if (inp[1] && !axes) {
    // Computed axes: keepdims keeps the rank; otherwise a static count of axes still gives it.
    const n = staticLength(env, inp[1]);
    if (keep) return [[unknownDims(s0.length)], [dt]];
    return [[n !== undefined && n > 0 ? unknownDims(s0.length - n) : undefined], [dt]];
  }
  let all = axes;
  if (!all || all.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) && !attrInts(node, 'axes')) return [[s0], [dt]];
    all = s0.map((_, k) => k);
  }
  const ax = new Set(all.map((a) => norm(a, s0.length)));
  return [[keep ? s0.map((d, k) => (ax.has(k) ? 1 : d)) : s0.filter((_, k) => !ax.has(k))], [dt]];
}

function matmulShape(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b || a.length === 0 || b.length === 0) return undefined;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  if (!batch) return undefined;
  const res = [...batch];
  if (a.length > 1) res.push(a2[a2.length - 2]);
  if (b.length > 1) res.push(b2[b2.length - 1]);
  return res;
}

/**
 * Einsum's output shape from its equation: explicit (`ij,jk->ik`) or implicit (the letters
 * seen once, sorted); an ellipsis stands for the broadcast of the inputs' leading dims.
 */
export function einsumShape(equation: string, inputs: (Dim[] | undefined)[]): Dim[] | undefined {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = lhs.split(',');
  if (terms.length !== inputs.length || inputs.some((s) => !s)) return undefined;
  const letters = new Map<string, Dim>();
  const ellipses: Dim[][] = [];
  for (let t = 0; t < terms.length; t++) {
    const s = inputs[t] as Dim[];
    const term = terms[t];
    const dots = term.indexOf('...');
    const named = term.replace('...', '');
    const nEll = dots >= 0 ? s.length - named.length : 0;
    if (nEll < 0 || (dots < 0 && named.length !== s.length)) return undefined;
    let j = 0;
    for (let k = 0; k < term.length; k++) {
      if (term.startsWith('...', k)) { ellipses.push(s.slice(j, j + nEll)); j += nEll; k += 2; continue; }
      const c = term[k];
      const prev = letters.get(c);
      letters.set(c, prev === undefined || prev === 1 ? s[j] : prev);
      j++;
    }
  }
  const ell = ellipses.length ? broadcastShapes(ellipses) ?? [] : [];
  let out = rhs;
  if (out === undefined) {
    const counts = new Map<string, number>();
    for (const c of lhs.replace(/\.\.\.|,/g, '')) counts.set(c, (counts.get(c) ?? 0) + 1);
    out = (ellipses.length ? '...' : '') + [...counts].filter(([, n]) => n === 1).map(([c]) => c).sort().join('');
  }
  const res: Dim[] = [];
  for (let k = 0; k < out.length; k++) {
    if (out.startsWith('...', k)) { res.push(...ell); k += 2; continue; }
    if (!letters.has(out[k])) return undefined;
    res.push(letters.get(out[k]) ?? null);
  }
  return res;
}
