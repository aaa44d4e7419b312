// d(1/X) = -dY / X^2 = -dY * Y^2, reusing the forward output.
import type { RuleEntry } from '../types';

export const Reciprocal: RuleEntry = {
  opType: 'Reciprocal',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const y = ctx.output(0);
    const ySq = emit.op('Mul', [y, y], undefined, 'y_squared');
    return [emit.op('Neg', [emit.op('Mul', [dy, ySq], undefined, 'dy_y_squared')], undefined, 'dx')];
  },
};
