// Shape inference, part 5: ops that move data without computing: Transpose,
// Reshape, Flatten, (Un)Squeeze, Concat, Gather*, Slice, Split, Expand, Tile,
// Pad. When a shape or axes input is computed but its length is static, the
// output's rank is still known (Expand/Reshape to a computed shape of 5 dims).
import type { NodeProto } from '../proto';
import { attrInt, attrInts } from '../attrs';
import { Dim, broadcastShapes, inferMinusOne, norm, product, unknownDims } from './dims';
import { Env, IntValue, ShapeRule, staticLength } from './env';

const t0Of = (node: NodeProto, env: Env) => env.dtype(node.input?.[0]);

/** Axes from the input `k` (opset 13+) or the attribute (before), with a static count when only that is known. */
function axesOf(node: NodeProto, env: Env, k: number): { axes?: number[]; count?: number } {
  const name = node.input?.[k];
  if (name) {
    const axes = env.ints(name);
    return { axes, count: axes?.length ?? staticLength(env, name) };
  }
  const axes = attrInts(node, 'axes');
  return { axes, count: axes?.length };
}

export const LAYOUT_RULES: Record<string, ShapeRule> = {
  Transpose: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    if (!s0) return [[undefined], [t0Of(node, env)]];
    const perm = attrInts(node, 'perm') ?? s0.map((_, k) => s0.length - 1 - k);
    return [[perm.map((p) => s0[p])], [t0Of(node, env)]];
  },
  Reshape: (node, env) => {
    const inp = node.input ?? [];
    const s0 = env.shape(inp[0]);
    const target = env.value(inp[1]);
    const n = staticLength(env, inp[1]);
    const res = target ? reshapeShape(s0, target, attrInt(node, 'allowzero', 0)) : n !== undefined ? unknownDims(n) : undefined;
    // A tracked value flattened to 1-D keeps its entries.
    const v = env.value(inp[0]);
    if (v && res?.length === 1) env.setValue(node.output?.[0] ?? '', { scalar: false, vals: v.vals });
    return [[res], [t0Of(node, env)]];
  },
  Flatten: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    if (!s0) return [[[null, null]], [t0Of(node, env)]];
    const axis = norm(attrInt(node, 'axis', 1), s0.length);
    return [[[product(s0.slice(0, axis)), product(s0.slice(axis))]], [t0Of(node, env)]];
  },
  Unsqueeze: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const { axes, count } = axesOf(node, env, 1);
    const v = env.value(node.input?.[0]);
    if (v && v.scalar && axes && axes.length === 1) env.setValue(node.output?.[0] ?? '', { scalar: false, vals: v.vals });
    if (!s0 || count === undefined) return [[undefined], [t0Of(node, env)]];
    const r = s0.length + count;
    if (!axes) return [[unknownDims(r)], [t0Of(node, env)]];
    const ax = new Set(axes.map((a) => norm(a, r)));
    const res: Dim[] = [];
    let j = 0;
    for (let k = 0; k < r; k++) res.push(ax.has(k) ? 1 : s0[j++]);
    return [[res], [t0Of(node, env)]];
  },
  Squeeze: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const { axes, count } = axesOf(node, env, 1);
    const v = env.value(node.input?.[0]);
    if (v && !v.scalar && v.vals.length === 1) env.setValue(node.output?.[0] ?? '', { scalar: true, vals: v.vals });
    if (!s0) return [[undefined], [t0Of(node, env)]];
    if (node.input?.[1] && !axes) return [[count !== undefined ? unknownDims(s0.length - count) : undefined], [t0Of(node, env)]];
    if (!axes) return [[s0.every((d) => typeof d === 'number') ? s0.filter((d) => d !== 1) : undefined], [t0Of(node, env)]];
    const ax = new Set(axes.map((a) => norm(a, s0.length)));
    return [[s0.filter((_, k) => !ax.has(k))], [t0Of(node, env)]];
  },
  Concat: (node, env) => {
    const inp = node.input ?? [];
    const ss = inp.map((i) => env.shape(i));
    const vs = inp.map((i) => env.value(i));
    if (vs.every((v) => v && !v.scalar)) env.setValue(node.output?.[0] ?? '', { scalar: false, vals: vs.flatMap((v) => (v as IntValue).vals) });
    const known = ss.find((s) => s);
    if (!known || ss.some((s) => !s || s.length !== known.length)) return [[known ? unknownDims(known.length) : undefined], [t0Of(node, env)]];
    const axis = norm(attrInt(node, 'axis', 0), known.length);
    const res = known.map((_, k) => {
      const ds = (ss as Dim[][]).map((s) => s[k]);
      if (k === axis) return ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a + b, 0) : null;
      return ds.find((x) => x !== null) ?? null;
    });
    return [[res], [t0Of(node, env)]];
  },
  Gather: (node, env) => {
    const inp = node.input ?? [];
    const s0 = env.shape(inp[0]);
    const si = env.shape(inp[1]);
    const v = env.value(inp[0]);
    const idx = env.ints(inp[1]);
    const iv = env.value(inp[1]);
    if (v && !v.scalar && idx && iv && attrInt(node, 'axis', 0) === 0) {
      const picked = idx.map((i) => v.vals[i < 0 ? i + v.vals.length : i]);
      if (picked.every((d) => d !== undefined)) env.setValue(node.output?.[0] ?? '', { scalar: iv.scalar, vals: picked });
    }
    if (!s0 || !si) return [[undefined], [t0Of(node, env)]];
    const axis = norm(attrInt(node, 'axis', 0), s0.length);
    return [[[...s0.slice(0, axis), ...si, ...s0.slice(axis + 1)]], [t0Of(node, env)]];
  },
  GatherElements: (node, env) => [[env.shape(node.input?.[1])], [t0Of(node, env)]],
  GatherND: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const si = env.shape(node.input?.[1]);
    const last = si?.[si.length - 1];
    if (!s0 || !si || typeof last !== 'number') return [[undefined], [t0Of(node, env)]];
    const b = attrInt(node, 'batch_dims', 0);
    return [[[...si.slice(0, -1), ...s0.slice(b + last)]], [t0Of(node, env)]];
  },
  Slice: (node, env) => [[sliceShape(env.shape(node.input?.[0]), env, node.input ?? [], node)], [t0Of(node, env)]],
  Split: (node, env) => {
    const inp = node.input ?? [];
    const s0 = env.shape(inp[0]);
    const t0 = t0Of(node, env);
    const n = node.output?.length ?? 0;
    if (!s0) return [Array(n).fill(undefined), Array(n).fill(t0)];
    const axis = norm(attrInt(node, 'axis', 0), s0.length);
    const sizes = inp[1] ? env.ints(inp[1]) : attrInts(node, 'split');
    const d = s0[axis];
    const res = Array.from({ length: n }, (_, k) => {
      let dk: Dim = null;
      if (sizes) dk = sizes[k];
      else if (typeof d === 'number' && d % n === 0) dk = d / n;
      return s0.map((x, j) => (j === axis ? dk : x));
    });
    return [res, Array(n).fill(t0)];
  },
  Expand: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const v = env.value(node.input?.[1]);
    const n = staticLength(env, node.input?.[1]);
    const target = v ? v.vals : n !== undefined ? unknownDims(n) : undefined;
    return [[target && s0 ? broadcastShapes([s0, target]) : undefined], [t0Of(node, env)]];
  },
  Tile: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    const reps = env.ints(node.input?.[1]);
    if (!s0) return [[undefined], [t0Of(node, env)]];
    if (!reps || reps.length !== s0.length) return [[unknownDims(s0.length)], [t0Of(node, env)]];
    return [[s0.map((d, k) => (reps[k] === 1 ? d : typeof d === 'number' ? d * reps[k] : null))], [t0Of(node, env)]];
  },
  Pad: (node, env) => {
    const inp = node.input ?? [];
    const s0 = env.shape(inp[0]);
    const pads = inp[1] ? env.ints(inp[1]) : attrInts(node, 'pads');
    if (!s0) return [[undefined], [t0Of(node, env)]];
    const r = s0.length;
    if (!pads || inp[3] || pads.length !== 2 * r) return [[unknownDims(r)], [t0Of(node, env)]];
    return [[s0.map((d, k) => (pads[k] + pads[k + r] === 0 ? d : typeof d === 'number' ? d + pads[k] + pads[k + r] : null))], [t0Of(node, env)]];
  },
};

function reshapeShape(input: Dim[] | undefined, target: IntValue, allowzero: number): Dim[] {
  const out: Dim[] = target.vals.map((d, k) => {
    if (d === 0 && !allowzero) return input && k < input.length ? input[k] : null;
    return d;
  });
  const m = out.indexOf(-1);
  if (m >= 0) {
    out[m] = input ? inferMinusOne(input, out.filter((_, k) => k !== m)) : null;
  }
  return out.map((d) => (typeof d === 'number' && d < 0 ? null : d));
}

function sliceShape(s0: Dim[] | undefined, env: Env, inp: string[], node: NodeProto): Dim[] | undefined {
  if (!s0) return undefined;
  const vals = (i: number, attr: string): Dim[] | undefined => (inp[i] ? env.value(inp[i])?.vals : attrInts(node, attr));
  const starts = vals(1, 'starts');
  const ends = vals(2, 'ends');
  let axes = inp[3] ? env.ints(inp[3]) : attrInts(node, 'axes');
  const steps = inp[4] ? env.ints(inp[4]) : undefined;
  if ((inp[3] && !axes) || (inp[4] && !steps)) return s0.map(() => null);
  if (!starts || !ends) {
    // Unknown bounds: only the sliced axes become unknown.
    if (!axes) return s0.map(() => null);
    const ax = new Set(axes.map((a) => norm(a, s0.length)));
    return s0.map((d, k) => (ax.has(k) ? null : d));
  }
  axes ??= starts.map((_, k) => k);
  const res = [...s0];
  axes.forEach((a0, k) => {
    const a = norm(a0, s0.length);
    res[a] = slicedDim(s0[a], starts[k], ends[k], steps?.[k] ?? 1);
  });
  return res;
}

function slicedDim(d: Dim, start: Dim, end: Dim, step: number): Dim {
  const prefix = start === 0 && step === 1;
  if (typeof d !== 'number') {
    // A full slice keeps a symbolic dim; anything else depends on its value.
    return prefix && (end === d || (typeof end === 'number' && end >= 2 ** 31 - 1)) ? d : null;
  }
  if (typeof end === 'string' && prefix) return d >= 1 ? `min(${end},${d})` : 0; // x[:s] of a fixed buffer
  if (typeof start !== 'number' || typeof end !== 'number') return null;
  const clampIdx = (x: number, lo: number, hi: number) => Math.min(Math.max(x < 0 ? x + d : x, lo), hi);
  // ONNX Slice: for step > 0 both clamp to [0, d]; for step < 0 start clamps to [0, d-1], end to [-1, d-1].
  const s0 = step > 0 ? clampIdx(start, 0, d) : clampIdx(start, 0, d - 1);
  const e0 = step > 0 ? clampIdx(end, 0, d) : clampIdx(end, -1, d - 1);
  return Math.max(0, Math.ceil((e0 - s0) / step));
}
