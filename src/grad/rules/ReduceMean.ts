// ReduceMean: dX = dY / count broadcast back over the reduced axes (axes is input 1 from opset 18).
import { reduceGrad } from '../reduce';
import type { RuleEntry } from '../types';

export const ReduceMean: RuleEntry = {
  opType: 'ReduceMean',
  nonDifferentiable: [1],
  rule: (ctx) => reduceGrad(ctx, true, 18),
};
