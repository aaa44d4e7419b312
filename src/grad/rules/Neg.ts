// d(-X) = -dY.
import type { RuleEntry } from '../types';

export const Neg: RuleEntry = {
  opType: 'Neg',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    return [ctx.emit.op('Neg', [dy], undefined, 'dx')];
  },
};
