// Gradient builder: the explicit list of gradient rules, one file per op.
// Adding a rule = one import and one line in RULES. Duplicates are refused.
import type { RuleEntry } from '../types';
import { Add } from './Add';
import { Sub } from './Sub';
import { Mul } from './Mul';
import { Div } from './Div';
import { Pow } from './Pow';
import { Sqrt } from './Sqrt';
import { Reciprocal } from './Reciprocal';
import { Neg } from './Neg';
import { Exp } from './Exp';
import { Log } from './Log';
import { Tanh } from './Tanh';
import { Sin } from './Sin';
import { Cos } from './Cos';
import { Erf } from './Erf';
import { Sigmoid } from './Sigmoid';
import { Relu } from './Relu';
import { Gelu } from './Gelu';
import { Softmax } from './Softmax';
import { LogSoftmax } from './LogSoftmax';
import { MatMul } from './MatMul';
import { Gemm } from './Gemm';
import { ReduceMean } from './ReduceMean';
import { ReduceSum } from './ReduceSum';
import { LayerNormalization } from './LayerNormalization';
import { Where } from './Where';
import { Cast } from './Cast';
import { Identity } from './Identity';
import { Dropout } from './Dropout';
import { Sum } from './Sum';
import { Transpose } from './Transpose';
import { Reshape } from './Reshape';
import { Flatten } from './Flatten';
import { Squeeze } from './Squeeze';
import { Unsqueeze } from './Unsqueeze';
import { Concat } from './Concat';
import { Split } from './Split';
import { Slice } from './Slice';
import { Gather } from './Gather';
import { Expand } from './Expand';
import { Tile } from './Tile';
import { Pad } from './Pad';
import { Trilu } from './Trilu';
import { ConstantOfShape } from './ConstantOfShape';
import { Constant } from './Constant';
import { NON_DIFFERENTIABLE } from './nonDifferentiable';
import { GradientReversal } from './GradientReversal';

const RULES: RuleEntry[] = [
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Sqrt,
  Reciprocal,
  Neg,
  Exp,
  Log,
  Tanh,
  Sin,
  Cos,
  Erf,
  Sigmoid,
  Relu,
  Gelu,
  Softmax,
  LogSoftmax,
  MatMul,
  Gemm,
  ReduceMean,
  ReduceSum,
  LayerNormalization,
  Where,
  Cast,
  Identity,
  Dropout,
  Sum,
  Transpose,
  Reshape,
  Flatten,
  Squeeze,
  Unsqueeze,
  Concat,
  Split,
  Slice,
  Gather,
  Expand,
  Tile,
  Pad,
  Trilu,
  ConstantOfShape,
  Constant,
  ...NON_DIFFERENTIABLE,
  GradientReversal,
];

const TABLE = new Map<string, RuleEntry>();
for (const r of RULES) {
  const key = `${r.domain ?? ''}::${r.opType}`;
  if (TABLE.has(key)) throw new Error(`gradient rule for ${key} is registered twice`);
  TABLE.set(key, r);
}

export function findRule(opType: string, domain = ''): RuleEntry | undefined {
  return TABLE.get(`${domain === 'ai.onnx' ? '' : domain}::${opType}`);
}

/** Every op with a rule, as `domain::Op` ('' for the default domain). */
export function supportedOps(): string[] {
  return [...TABLE.keys()].sort();
}
