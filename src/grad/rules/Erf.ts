// d erf(X) = dY * 2/sqrt(pi) * exp(-X^2).
import type { RuleEntry } from '../types';

export const Erf: RuleEntry = {
  opType: 'Erf',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const x = ctx.input(0);
    const expNegSq = emit.op('Exp', [emit.op('Neg', [emit.op('Mul', [x, x], undefined, 'x_squared')], undefined, 'neg_x_squared')], undefined, 'exp_neg_x_squared');
    const deriv = emit.op('Mul', [expNegSq, emit.float(2 / Math.sqrt(Math.PI), 'two_over_sqrt_pi')], undefined, 'derf');
    return [emit.op('Mul', [dy, deriv], undefined, 'dx')];
  },
};
