// Shape inference, part 3: elementwise ops. Unary ops keep their input's shape,
// broadcasting ops broadcast, comparisons give bool; integer arithmetic on
// tracked shape values (Shape -> Gather -> Mul -> Concat chains) is evaluated.
import { DataType } from '../proto';
import { attrInt } from '../attrs';
import { broadcastShapes, Dim } from './dims';
import { Env, INT_TYPES, IntValue, ShapeRule, sameRule } from './env';

const UNARY = ['Identity', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Tanh', 'Erf', 'Sigmoid', 'Relu', 'Gelu', 'Softmax', 'LogSoftmax', 'Hardmax', 'Trilu',
  'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'HardSigmoid', 'LeakyRelu', 'Elu', 'Selu', 'Celu',
  'ThresholdedRelu', 'Shrink', 'Softplus', 'Softsign', 'Sign', 'Clip', 'Mish', 'HardSwish', 'CumSum', 'BitwiseNot', 'LpNormalization', 'MeanVarianceNormalization',
  'InstanceNormalization', 'GroupNormalization', 'QuantizeLinear', 'DequantizeLinear', 'ScatterElements', 'ScatterND', 'Scatter'];
const BROADCAST = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Mod', 'PRelu', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor'];
const COMPARE = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'];
const ARITH = new Set(['Add', 'Sub', 'Mul', 'Div']);

const unary: ShapeRule = (node, env) => [[env.shape(node.input?.[0])], [env.dtype(node.input?.[0])]];

const broadcast: ShapeRule = (node, env) => {
  const inp = node.input ?? [];
  if (ARITH.has(node.op_type ?? '')) propagateArith(node.op_type ?? '', inp, node.output?.[0] ?? '', env);
  return [[broadcastShapes(inp.map((i) => env.shape(i)))], [env.dtype(inp[0])]];
};

const compare: ShapeRule = (node, env) => {
  if (node.op_type === 'Equal') propagateEqual(node.input ?? [], node.output?.[0] ?? '', env);
  return [[broadcastShapes((node.input ?? []).map((i) => env.shape(i)))], [DataType.BOOL]];
};

const boolOf: ShapeRule = (node, env) => [[env.shape(node.input?.[0])], [DataType.BOOL]];

export const ELEMENTWISE_RULES: Record<string, ShapeRule> = {
  ...sameRule(UNARY, unary),
  ...sameRule(BROADCAST, broadcast),
  ...sameRule(COMPARE, compare),
  ...sameRule(['Not', 'IsNaN', 'IsInf'], boolOf),
  // Microsoft-domain fusions that keep the input's shape (what ORT's optimizer writes back).
  FastGelu: unary,
  BiasGelu: unary,
  Where: (node, env) => {
    const inp = node.input ?? [];
    propagateWhere(inp, node.output?.[0] ?? '', env);
    return [[broadcastShapes(inp.map((i) => env.shape(i)))], [env.dtype(inp[1]) ?? env.dtype(inp[2])]];
  },
  Dropout: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    return [[s0, s0], [env.dtype(node.input?.[0]), DataType.BOOL]];
  },
  Cast: (node, env) => {
    const to = attrInt(node, 'to', 0);
    const v = env.value(node.input?.[0]);
    if (v && INT_TYPES.has(to)) env.setValue(node.output?.[0] ?? '', v);
    return [[env.shape(node.input?.[0])], [to]];
  },
  CastLike: (node, env) => [[env.shape(node.input?.[0])], [env.dtype(node.input?.[1])]],
};

/** Entries of two tracked values broadcast against each other, or undefined when they do not line up. */
function pairs(a: IntValue, b: IntValue): [Dim, Dim][] | undefined {
  const n = Math.max(a.vals.length, b.vals.length);
  if ((a.vals.length !== n && a.vals.length !== 1) || (b.vals.length !== n && b.vals.length !== 1)) return undefined;
  return Array.from({ length: n }, (_, k) => [a.vals[a.vals.length === 1 ? 0 : k], b.vals[b.vals.length === 1 ? 0 : k]]);
}

/**
 * Equal on tracked values (1 / 0), as torch's expand exports it: Where(Equal(target, -1), 1, target).
 * A symbolic dim is never negative, and equals itself.
 */
function propagateEqual(inp: string[], out: string, env: Env): void {
  const a = env.value(inp[0]);
  const b = env.value(inp[1]);
  const ps = a && b && pairs(a, b);
  if (!ps) return;
  const eq = ([x, y]: [Dim, Dim]): Dim => {
    if (x === null || y === null) return null;
    if (typeof x === 'number' && typeof y === 'number') return x === y ? 1 : 0;
    if (x === y) return 1;
    if ((typeof x === 'number' && x < 0) || (typeof y === 'number' && y < 0)) return 0;
    return null;
  };
  env.setValue(out, { scalar: !!a?.scalar && !!b?.scalar, vals: ps.map(eq) });
}

/** Where on tracked values: entries whose condition is known pick their side. */
function propagateWhere(inp: string[], out: string, env: Env): void {
  const [c, x, y] = inp.map((i) => env.value(i));
  if (!c || !x || !y) return;
  const n = Math.max(c.vals.length, x.vals.length, y.vals.length);
  const at = (v: IntValue, k: number): Dim | undefined => (v.vals.length === 1 ? v.vals[0] : v.vals.length === n ? v.vals[k] : undefined);
  const vals: Dim[] = [];
  for (let k = 0; k < n; k++) {
    const [ck, xk, yk] = [at(c, k), at(x, k), at(y, k)];
    if (ck === undefined || xk === undefined || yk === undefined) return;
    vals.push(ck === 1 ? xk : ck === 0 ? yk : null);
  }
  env.setValue(out, { scalar: c.scalar && x.scalar && y.scalar, vals });
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
