// Graph IR: light static shape and type inference for transformer exports.
//
// Seeds from graph inputs (symbolic dims keep their names), initializers and
// value_info, then propagates element types, ranks and dims through the common
// ops. Small integer tensors that compute shapes (Shape -> Gather -> Concat ->
// Reshape chains in torch exports) are tracked by value, so reshape targets
// stay static. The rule everywhere: an unknown dim is null and an unknown rank
// is undefined; a wrong static shape is worse than none, so when in doubt we
// answer "unknown" and the gradient rules fall back to in-graph Shape().
import { DataType, GraphProto, NodeProto, TensorProto, ValueInfoProto, toNumber } from './proto';
import { attrInt, attrInts, attrTensor } from './attrs';
import { dimsOf, numElements, tensorToInts } from './tensor';
import type { Dim } from '../grad/types';

export type { Dim };

/** Values of a small integer tensor: its dims (numbers or symbols), and whether it is a scalar. */
interface IntValue { scalar: boolean; vals: Dim[] }

export interface ShapeTable {
  shape(name: string): Dim[] | undefined;
  dtype(name: string): number | undefined;
}

const MAX_TRACKED = 64;
const INT_TYPES = new Set([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64]);
const UNARY = new Set(['Identity', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Tanh', 'Erf', 'Sigmoid', 'Relu', 'Gelu', 'Softmax', 'LogSoftmax', 'Trilu',
  'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'HardSigmoid', 'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'Sign', 'Clip', 'FastGelu', 'BiasGelu', 'Mish', 'HardSwish']);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Mod', 'PRelu', 'BitShift']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceSumSquare', 'ArgMax', 'ArgMin']);

/** The symbol s of a `min(s,N)` dim (a prefix slice of a fixed-size buffer), else undefined. */
function minOf(d: string): string | undefined {
  return /^min\((.+),([1-9][0-9]*)\)$/.exec(d)?.[1];
}

/** Broadcast two dims (numpy rules), answering null unless the result is certain. */
function bdim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  // min(b, N) with N >= 1 against b: if either is 1 both are, so the result is always b.
  if (typeof a === 'string' && minOf(a) === b) return b;
  if (typeof b === 'string' && minOf(b) === a) return a;
  // A number other than 1 wins against anything else (the other side must be 1 or equal).
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null; // two different symbols or an unknown: either could be 1
}

export function broadcastShapes(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const ss = shapes as Dim[][];
  const rank = Math.max(0, ...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let d: Dim = 1;
    for (const s of ss) {
      const j = k - (rank - s.length);
      if (j >= 0) d = bdim(d, s[j]);
    }
    out.push(d);
  }
  return out;
}

function product(ds: Dim[]): Dim {
  let p = 1;
  let sym: Dim = null;
  for (const d of ds) {
    if (typeof d === 'number') p *= d;
    else if (d === null || sym !== null) return null;
    else sym = d;
  }
  if (sym === null) return p;
  return p === 1 ? sym : null;
}

/** numel(input) / numel(other output dims), cancelling symbols by name; null when not certain. */
function inferMinusOne(input: Dim[], others: Dim[]): Dim {
  const num = [...input];
  let den = 1;
  for (const d of others) {
    if (typeof d === 'number') { den *= d; continue; }
    if (d === null) return null;
    const k = num.indexOf(d);
    if (k < 0) return null;
    num.splice(k, 1);
  }
  const rest = product(num);
  if (typeof rest === 'number') return den !== 0 && rest % den === 0 ? rest / den : null;
  return den === 1 ? rest : null;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function tensorDims(vi: ValueInfoProto): Dim[] | undefined {
  const s = vi.type?.tensor_type?.shape;
  if (!s) return undefined;
  // Decoded messages carry proto defaults on their prototype (dim_value 0), so only an own
  // dim_value counts, and a named dim wins.
  return (s.dim ?? []).map((d) => {
    if (d.dim_param) return d.dim_param;
    return Object.prototype.hasOwnProperty.call(d, 'dim_value') && d.dim_value !== undefined && d.dim_value !== null ? toNumber(d.dim_value) : null;
  });
}

/** Per-dim merge of two answers for one tensor; disagreeing ranks or numbers mean we know nothing. */
function merge(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.length !== b.length) return undefined;
  const out: Dim[] = [];
  for (let k = 0; k < a.length; k++) {
    const x = a[k];
    const y = b[k];
    if (typeof x === 'number' && typeof y === 'number' && x !== y) return undefined;
    out.push(typeof x === 'number' ? x : typeof y === 'number' ? y : x ?? y);
  }
  return out;
}

/**
 * The inference state. Built from a graph, then extendable node by node, so the
 * gradient driver can ask for shapes of the tensors its rules have just emitted.
 */
export class ShapeInference implements ShapeTable {
  private readonly shapes = new Map<string, Dim[] | undefined>();
  private readonly types = new Map<string, number>();
  private readonly values = new Map<string, IntValue>();
  private readonly declared = new Map<string, Dim[] | undefined>();
  private readonly env: Env;

  constructor(graph: GraphProto) {
    for (const vi of graph.value_info ?? []) {
      this.declared.set(vi.name ?? '', tensorDims(vi));
      const et = vi.type?.tensor_type?.elem_type;
      if (et) this.types.set(vi.name ?? '', et);
    }
    for (const vi of [...(graph.input ?? []), ...(graph.output ?? [])]) {
      const et = vi.type?.tensor_type?.elem_type;
      if (et) this.types.set(vi.name ?? '', et);
    }
    for (const vi of graph.input ?? []) this.shapes.set(vi.name ?? '', tensorDims(vi));
    for (const t of graph.initializer ?? []) this.addInitializer(t);
    this.env = {
      shape: (n) => (n ? this.shapes.get(n) : undefined),
      dtype: (n) => (n ? this.types.get(n) : undefined),
      value: (n) => (n ? this.values.get(n) : undefined),
      ints: (n) => {
        const v = n ? this.values.get(n) : undefined;
        return v && v.vals.every((d) => typeof d === 'number') ? (v.vals as number[]) : undefined;
      },
      setValue: (n, v) => { if (v.vals.length <= MAX_TRACKED) this.values.set(n, v); },
      tensorValue: (n, t) => this.trackValue(n, t),
    };
    for (const node of graph.node ?? []) this.addNode(node);
    for (const vi of graph.output ?? []) {
      const n = vi.name ?? '';
      this.shapes.set(n, merge(this.shapes.get(n), tensorDims(vi)));
    }
  }

  private trackValue(name: string, t: TensorProto): void {
    const dt = t.data_type ?? 0;
    const dims = dimsOf(t);
    if ((dt === DataType.INT64 || dt === DataType.INT32) && dims.length <= 1 && numElements(dims) <= MAX_TRACKED) {
      this.values.set(name, { scalar: dims.length === 0, vals: tensorToInts(t) });
    }
  }

  addInitializer(t: TensorProto): void {
    this.shapes.set(t.name ?? '', dimsOf(t));
    this.types.set(t.name ?? '', t.data_type ?? 0);
    this.trackValue(t.name ?? '', t);
  }

  /** Infer one node's outputs from what is known about its inputs. */
  addNode(node: NodeProto): void {
    let outs: (Dim[] | undefined)[] = [];
    let outTypes: (number | undefined)[] = [];
    try {
      [outs, outTypes] = inferNode(node, this.env);
    } catch {
      // A malformed attribute or constant: leave this node's outputs unknown.
    }
    (node.output ?? []).forEach((o, k) => {
      if (!o) return;
      this.shapes.set(o, merge(outs[k], this.declared.get(o)));
      const t = outTypes[k];
      if (t !== undefined && !this.types.has(o)) this.types.set(o, t);
    });
  }

  /** Record that `name` has the same shape and type as `like` (a gradient and its tensor). */
  alias(name: string, like: string): void {
    this.shapes.set(name, merge(this.shapes.get(name), this.shape(like)));
    const t = this.types.get(like);
    if (t !== undefined && !this.types.has(name)) this.types.set(name, t);
  }

  shape(name: string): Dim[] | undefined {
    return this.shapes.get(name) ?? this.declared.get(name);
  }

  dtype(name: string): number | undefined {
    return this.types.get(name);
  }
}

export function inferShapes(graph: GraphProto): ShapeInference {
  return new ShapeInference(graph);
}

interface Env {
  shape(name: string | undefined): Dim[] | undefined;
  dtype(name: string | undefined): number | undefined;
  value(name: string | undefined): IntValue | undefined;
  ints(name: string | undefined): number[] | undefined;
  setValue(name: string, v: IntValue): void;
  tensorValue(name: string, t: TensorProto): void;
}

type Result = [(Dim[] | undefined)[], (number | undefined)[]];

function inferNode(node: NodeProto, env: Env): Result {
  const op = node.op_type ?? '';
  const inp = node.input ?? [];
  const out0 = node.output?.[0] ?? '';
  const s0 = env.shape(inp[0]);
  const t0 = env.dtype(inp[0]);
  if (node.domain && node.domain !== 'ai.onnx') {
    // Custom ops we know are identity-shaped (the GRL); others are opaque.
    return op === 'GradientReversal' ? [[s0], [t0]] : [[], []];
  }
  if (UNARY.has(op)) return [[s0], [t0]];
  if (op === 'Dropout') return [[s0, s0], [t0, DataType.BOOL]];
  if (BROADCAST.has(op)) {
    const dt = op === 'Where' ? env.dtype(inp[1]) : t0;
    if (op !== 'Where' && op !== 'Pow') propagateArith(op, inp, out0, env);
    return [[broadcastShapes(inp.map((i) => env.shape(i)))], [dt]];
  }
  if (COMPARE.has(op)) return [[broadcastShapes(inp.map((i) => env.shape(i)))], [DataType.BOOL]];
  if (op === 'Not' || op === 'IsNaN' || op === 'IsInf') return [[s0], [DataType.BOOL]];
  switch (op) {
    case 'Cast': {
      const to = attrInt(node, 'to', 0);
      const v = env.value(inp[0]);
      if (v && INT_TYPES.has(to)) env.setValue(out0, v);
      return [[s0], [to]];
    }
    case 'CastLike': return [[s0], [env.dtype(inp[1])]];
    case 'Constant': {
      const t = attrTensor(node, 'value');
      if (t) { env.tensorValue(out0, t); return [[dimsOf(t)], [t.data_type]]; }
      const vi = attrInts(node, 'value_ints');
      if (vi) { env.setValue(out0, { scalar: false, vals: vi }); return [[[vi.length]], [DataType.INT64]]; }
      const i = attrInt(node, 'value_int');
      if (i !== undefined) { env.setValue(out0, { scalar: true, vals: [i] }); return [[[]], [DataType.INT64]]; }
      if (node.attribute?.some((a) => a.name === 'value_float')) return [[[]], [DataType.FLOAT]];
      return [[], []];
    }
    case 'Shape': {
      if (!s0) return [[undefined], [DataType.INT64]];
      const r = s0.length;
      const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
      const start = clamp(attrInt(node, 'start', 0));
      const end = clamp(attrInt(node, 'end', r));
      const vals = s0.slice(start, Math.max(start, end));
      env.setValue(out0, { scalar: false, vals });
      return [[[vals.length]], [DataType.INT64]];
    }
    case 'Size': return [[[]], [DataType.INT64]];
    case 'ConstantOfShape': {
      const t = attrTensor(node, 'value');
      const v = env.value(inp[0]);
      return [[v ? v.vals : undefined], [t?.data_type ?? DataType.FLOAT]];
    }
    case 'Range': {
      // Shape-derived bounds: Range(0, n, 1) has n elements, symbolic or not.
      const [start, limit, delta] = [0, 1, 2].map((k) => { const v = env.value(inp[k]); return v?.scalar ? v.vals[0] : null; });
      if (start === 0 && delta === 1 && limit !== null) return [[[typeof limit === 'number' ? Math.max(0, limit) : limit]], [t0]];
      if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0) return [[[Math.max(0, Math.ceil((limit - start) / delta))]], [t0]];
      return [[[null]], [t0]];
    }
    case 'NonZero': return [[s0 ? [s0.length, null] : undefined], [DataType.INT64]];
    case 'MatMul': return [[matmulShape(s0, env.shape(inp[1]))], [t0]];
    case 'Gemm': {
      const sb = env.shape(inp[1]);
      if (!s0 || !sb || s0.length !== 2 || sb.length !== 2) return [[undefined], [t0]];
      const m = attrInt(node, 'transA', 0) ? s0[1] : s0[0];
      const n = attrInt(node, 'transB', 0) ? sb[0] : sb[1];
      return [[[m, n]], [t0]];
    }
    case 'Transpose': {
      if (!s0) return [[undefined], [t0]];
      const perm = attrInts(node, 'perm') ?? s0.map((_, k) => s0.length - 1 - k);
      return [[perm.map((p) => s0[p])], [t0]];
    }
    case 'Reshape': return [[reshapeShape(s0, env.value(inp[1]), attrInt(node, 'allowzero', 0))], [t0]];
    case 'Flatten': {
      if (!s0) return [[undefined], [t0]];
      const axis = norm(attrInt(node, 'axis', 1), s0.length);
      return [[[product(s0.slice(0, axis)), product(s0.slice(axis))]], [t0]];
    }
    case 'Unsqueeze': {
      const axes = inp[1] ? env.ints(inp[1]) : attrInts(node, 'axes');
      const v = env.value(inp[0]);
      if (v && v.scalar && axes && axes.length === 1) env.setValue(out0, { scalar: false, vals: v.vals });
      if (!s0 || !axes) return [[undefined], [t0]];
      const r = s0.length + axes.length;
      const ax = new Set(axes.map((a) => norm(a, r)));
      const res: Dim[] = [];
      let j = 0;
      for (let k = 0; k < r; k++) res.push(ax.has(k) ? 1 : s0[j++]);
      return [[res], [t0]];
    }
    case 'Squeeze': {
      const axes = inp[1] ? env.ints(inp[1]) : attrInts(node, 'axes');
      const v = env.value(inp[0]);
      if (v && !v.scalar && v.vals.length === 1) env.setValue(out0, { scalar: true, vals: v.vals });
      if (!s0) return [[undefined], [t0]];
      if (inp[1] && !axes) return [[undefined], [t0]];
      if (!axes) return [[s0.every((d) => typeof d === 'number') ? s0.filter((d) => d !== 1) : undefined], [t0]];
      const ax = new Set(axes.map((a) => norm(a, s0.length)));
      return [[s0.filter((_, k) => !ax.has(k))], [t0]];
    }
    case 'Concat': {
      const ss = inp.map((i) => env.shape(i));
      const vs = inp.map((i) => env.value(i));
      if (vs.every((v) => v && !v.scalar)) env.setValue(out0, { scalar: false, vals: vs.flatMap((v) => (v as IntValue).vals) });
      const known = ss.find((s) => s);
      if (!known || ss.some((s) => !s || s.length !== known.length)) return [[known ? known.map(() => null) : undefined], [t0]];
      const axis = norm(attrInt(node, 'axis', 0), known.length);
      const res = known.map((_, k) => {
        if (k === axis) {
          const ds = (ss as Dim[][]).map((s) => s[k]);
          return ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a + b, 0) : null;
        }
        const d = (ss as Dim[][]).map((s) => s[k]).find((x) => x !== null);
        return d ?? null;
      });
      return [[res], [t0]];
    }
    case 'Gather': {
      const si = env.shape(inp[1]);
      const v = env.value(inp[0]);
      const idx = env.ints(inp[1]);
      const iv = env.value(inp[1]);
      if (v && !v.scalar && idx && iv && attrInt(node, 'axis', 0) === 0) {
        const picked = idx.map((i) => v.vals[i < 0 ? i + v.vals.length : i]);
        if (picked.every((d) => d !== undefined)) env.setValue(out0, { scalar: iv.scalar, vals: picked });
      }
      if (!s0 || !si) return [[undefined], [t0]];
      const axis = norm(attrInt(node, 'axis', 0), s0.length);
      return [[[...s0.slice(0, axis), ...si, ...s0.slice(axis + 1)]], [t0]];
    }
    case 'GatherElements': return [[env.shape(inp[1])], [t0]];
    case 'Slice': return [[sliceShape(s0, env, inp, node)], [t0]];
    case 'Split': {
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
    }
    case 'Expand': {
      const v = env.value(inp[1]);
      return [[v && s0 ? broadcastShapes([s0, v.vals]) : undefined], [t0]];
    }
    case 'Tile': {
      const reps = env.ints(inp[1]);
      if (!s0 || !reps || reps.length !== s0.length) return [[undefined], [t0]];
      return [[s0.map((d, k) => (reps[k] === 1 ? d : typeof d === 'number' ? d * reps[k] : null))], [t0]];
    }
    case 'Pad': {
      const pads = inp[1] ? env.ints(inp[1]) : attrInts(node, 'pads');
      if (!s0 || !pads || inp[3]) return [[undefined], [t0]];
      const r = s0.length;
      if (pads.length !== 2 * r) return [[undefined], [t0]];
      return [[s0.map((d, k) => (pads[k] + pads[k + r] === 0 ? d : typeof d === 'number' ? d + pads[k] + pads[k + r] : null))], [t0]];
    }
    case 'LayerNormalization': {
      if (!s0) return [[undefined, undefined, undefined], [t0, DataType.FLOAT, DataType.FLOAT]];
      const axis = norm(attrInt(node, 'axis', -1), s0.length);
      const stat = s0.map((d, k) => (k >= axis ? 1 : d));
      return [[s0, stat, stat], [t0, DataType.FLOAT, DataType.FLOAT]];
    }
    case 'OneHot': return [[undefined], [env.dtype(inp[2])]];
  }
  if (REDUCE.has(op)) {
    const dt = op === 'ArgMax' || op === 'ArgMin' ? DataType.INT64 : t0;
    if (!s0) return [[undefined], [dt]];
    const keep = attrInt(node, 'keepdims', 1);
    let axes: number[] | undefined;
    if (op === 'ArgMax' || op === 'ArgMin') axes = [attrInt(node, 'axis', 0)];
    else if (inp[1]) axes = env.ints(inp[1]);
    else axes = attrInts(node, 'axes');
    if (inp[1] && !axes) return [[undefined], [dt]];
    if (!axes || axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0) && inp.length > 0 && !attrInts(node, 'axes')) return [[s0], [dt]];
      axes = s0.map((_, k) => k);
    }
    const ax = new Set(axes.map((a) => norm(a, s0.length)));
    const res = keep ? s0.map((d, k) => (ax.has(k) ? 1 : d)) : s0.filter((_, k) => !ax.has(k));
    return [[res], [dt]];
  }
  return [[], []];
}

/** Elementwise arithmetic on tracked integer values (shape arithmetic); symbols make the entry null. */
function propagateArith(op: string, inp: string[], out: string, env: Env): void {
  const a = env.value(inp[0]);
  const b = env.value(inp[1]);
  if (!a || !b || inp.length !== 2) return;
  const n = Math.max(a.vals.length, b.vals.length);
  if ((a.vals.length !== n && a.vals.length !== 1) || (b.vals.length !== n && b.vals.length !== 1)) return;
  const f = (x: number, y: number): number | null => {
    switch (op) {
      case 'Add': return x + y;
      case 'Sub': return x - y;
      case 'Mul': return x * y;
      case 'Div': return y !== 0 ? Math.trunc(x / y) : null;
      default: return null;
    }
  };
  const vals: Dim[] = [];
  for (let k = 0; k < n; k++) {
    const x = a.vals[a.vals.length === 1 ? 0 : k];
    const y = b.vals[b.vals.length === 1 ? 0 : k];
    if (op === 'Mul' && (x === 1 || y === 1)) vals.push(x === 1 ? y : x);
    else vals.push(typeof x === 'number' && typeof y === 'number' ? f(x, y) : null);
  }
  env.setValue(out, { scalar: a.scalar && b.scalar, vals });
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

function reshapeShape(input: Dim[] | undefined, target: IntValue | undefined, allowzero: number): Dim[] | undefined {
  if (!target) return undefined;
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
