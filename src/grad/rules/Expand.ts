// d Expand(X, shape) = dY summed over the broadcast axes back to X's shape;
// Expand follows multidirectional broadcasting, so `unbroadcast` is exact,
// including when `shape` has a higher rank than X.
import { unbroadcast } from '../unbroadcast';
import type { RuleEntry } from '../types';

export const Expand: RuleEntry = {
  opType: 'Expand',
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null, null];
    return [unbroadcast(ctx.emit, dy, ctx.input(0)), null];
  },
};
