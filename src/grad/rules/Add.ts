// d(A + B) = dY for both inputs, summed over the axes each was broadcast along.
import { unbroadcast } from '../unbroadcast';
import type { RuleEntry } from '../types';

export const Add: RuleEntry = {
  opType: 'Add',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null];
    return [0, 1].map((i) => (ctx.needsGrad(i) ? unbroadcast(ctx.emit, dy, ctx.input(i)) : null));
  },
};
