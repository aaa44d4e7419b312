// d Sum(X0, X1, ...) = dY for every input, each summed over its broadcast axes.
import { unbroadcast } from '../unbroadcast';
import type { RuleEntry } from '../types';

export const Sum: RuleEntry = {
  opType: 'Sum',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    return Array.from({ length: ctx.numInputs }, (_, i) => (dy && ctx.needsGrad(i) ? unbroadcast(ctx.emit, dy, ctx.input(i)) : null));
  },
};
