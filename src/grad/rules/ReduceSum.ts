// ReduceSum: dX = dY broadcast back over the reduced axes (axes is input 1 from opset 13).
import { reduceGrad } from '../reduce';
import type { RuleEntry } from '../types';

export const ReduceSum: RuleEntry = {
  opType: 'ReduceSum',
  nonDifferentiable: [1],
  rule: (ctx) => reduceGrad(ctx, false, 13),
};
