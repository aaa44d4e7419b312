// d ln(X) = dY / X.
import type { RuleEntry } from '../types';

export const Log: RuleEntry = {
  opType: 'Log',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    return [ctx.emit.op('Div', [dy, ctx.input(0)], undefined, 'dx')];
  },
};
