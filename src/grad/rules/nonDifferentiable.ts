// Gradient builder: the one list of default-domain ops whose outputs carry no
// gradient (shapes, sizes, comparisons, masks, argmax positions, indices,
// random draws, constants). Each is registered with every input declared
// non-differentiable and a rule that returns nulls, and backward.ts, inspect
// and head detection all read NON_DIFFERENTIABLE_OPS from here. They appear in
// the shape and mask chains of exported transformers (Shape -> Gather ->
// Concat -> Reshape, attention-mask Equal/Where), which the driver prunes.
import type { RuleEntry } from '../types';
import { Constant } from './Constant';
import { ConstantOfShape } from './ConstantOfShape';

// op -> how many inputs it can take (the maximum in any opset)
const OPS: Record<string, number> = {
  Shape: 1, Size: 1, Range: 3, NonZero: 1, ArgMax: 1, ArgMin: 1,
  Equal: 2, Less: 2, LessOrEqual: 2, Greater: 2, GreaterOrEqual: 2,
  Not: 1, And: 2, Or: 2, Xor: 2, IsNaN: 1, IsInf: 1,
  EyeLike: 1, OneHot: 3,
  RandomNormal: 0, RandomNormalLike: 1, RandomUniform: 0, RandomUniformLike: 1, Bernoulli: 1, Multinomial: 1,
};

export const NON_DIFFERENTIABLE: RuleEntry[] = Object.entries(OPS).map(([opType, n]) => ({
  opType,
  nonDifferentiable: Array.from({ length: n }, (_, i) => i),
  rule: (ctx) => Array.from({ length: ctx.numInputs }, () => null),
}));

/**
 * Default-domain ops whose outputs never carry a gradient, whatever their element type:
 * the entries above plus the constants, which have rule files of their own.
 */
export const NON_DIFFERENTIABLE_OPS: ReadonlySet<string> = new Set([...NON_DIFFERENTIABLE, Constant, ConstantOfShape].map((r) => r.opType));
