// d relu(X) = dY where X > 0, else 0 (the subgradient at 0 is 0, as in PyTorch).
import type { RuleEntry } from '../types';

export const Relu: RuleEntry = {
  opType: 'Relu',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const zero = emit.float(0, 'zero');
    const positive = emit.op('Greater', [ctx.input(0), zero], undefined, 'x_positive');
    return [emit.op('Where', [positive, dy, zero], undefined, 'dx')];
  },
};
