// d sin(X) = dY * cos(X).
import type { RuleEntry } from '../types';

export const Sin: RuleEntry = {
  opType: 'Sin',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    return [ctx.emit.op('Mul', [dy, ctx.emit.op('Cos', [ctx.input(0)], undefined, 'cos')], undefined, 'dx')];
  },
};
