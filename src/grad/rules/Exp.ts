// d exp(X) = dY * Y, reusing the forward output.
import type { RuleEntry } from '../types';

export const Exp: RuleEntry = {
  opType: 'Exp',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    return [ctx.emit.op('Mul', [dy, ctx.output(0)], undefined, 'dx')];
  },
};
