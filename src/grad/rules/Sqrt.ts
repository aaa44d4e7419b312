// d sqrt(X) = dY / (2 Y), reusing the forward output.
import type { RuleEntry } from '../types';

export const Sqrt: RuleEntry = {
  opType: 'Sqrt',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const half = ctx.emit.op('Mul', [dy, ctx.emit.float(0.5, 'half')], undefined, 'half_dy');
    return [ctx.emit.op('Div', [half, ctx.output(0)], undefined, 'dx')];
  },
};
