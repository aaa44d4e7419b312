// d erf(X) = dY * 2/sqrt(pi) * exp(-X^2), with the constant folded into the
// exponent, exp(ln(2/sqrt(pi)) - X^2): four passes over X instead of five (every
// erf-GELU of a BERT FFN runs this on its widest activation).
import type { RuleEntry } from '../types';

export const Erf: RuleEntry = {
  opType: 'Erf',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const x = ctx.input(0);
    const squared = emit.op('Mul', [x, x], undefined, 'x_squared');
    const exponent = emit.op('Sub', [emit.float(Math.log(2 / Math.sqrt(Math.PI)), 'log_two_over_sqrt_pi'), squared], undefined, 'exponent');
    const deriv = emit.op('Exp', [exponent], undefined, 'derf');
    return [emit.op('Mul', [dy, deriv], undefined, 'dx')];
  },
};
