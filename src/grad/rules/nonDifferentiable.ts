// Ops whose outputs are integers or booleans (shapes, sizes, masks, argmax
// positions): no gradient flows through them, so every input is declared
// non-differentiable and the rule returns nulls. They appear in the shape
// and mask chains of exported transformers (Shape -> Gather -> Concat ->
// Reshape, attention-mask Equal/Where), which the driver prunes anyway.
import type { RuleEntry } from '../types';

// op -> how many inputs it can take (the maximum in any opset)
const OPS: Record<string, number> = {
  Shape: 1, Size: 1, Range: 3, NonZero: 1, ArgMax: 1, ArgMin: 1,
  Equal: 2, Less: 2, LessOrEqual: 2, Greater: 2, GreaterOrEqual: 2,
  Not: 1, And: 2, Or: 2, Xor: 2, IsNaN: 1, IsInf: 1,
};

export const NON_DIFFERENTIABLE: RuleEntry[] = Object.entries(OPS).map(([opType, n]) => ({
  opType,
  nonDifferentiable: Array.from({ length: n }, (_, i) => i),
  rule: (ctx) => Array.from({ length: ctx.numInputs }, () => null),
}));
