// d cos(X) = -dY * sin(X).
import type { RuleEntry } from '../types';

export const Cos: RuleEntry = {
  opType: 'Cos',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const sin = ctx.emit.op('Sin', [ctx.input(0)], undefined, 'sin');
    return [ctx.emit.op('Neg', [ctx.emit.op('Mul', [dy, sin], undefined, 'dy_sin')], undefined, 'dx')];
  },
};
