// d tanh(X) = dY * (1 - Y^2), reusing the forward output.
import type { RuleEntry } from '../types';

export const Tanh: RuleEntry = {
  opType: 'Tanh',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const y = ctx.output(0);
    const oneMinus = emit.op('Sub', [emit.float(1, 'one'), emit.op('Mul', [y, y], undefined, 'y_squared')], undefined, 'one_minus_y_squared');
    return [emit.op('Mul', [dy, oneMinus], undefined, 'dx')];
  },
};
