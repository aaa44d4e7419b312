// d sigmoid(X) = dY * Y * (1 - Y), reusing the forward output.
import type { RuleEntry } from '../types';

export const Sigmoid: RuleEntry = {
  opType: 'Sigmoid',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const y = ctx.output(0);
    const deriv = emit.op('Mul', [y, emit.op('Sub', [emit.float(1, 'one'), y], undefined, 'one_minus_y')], undefined, 'dsigmoid');
    return [emit.op('Mul', [dy, deriv], undefined, 'dx')];
  },
};
