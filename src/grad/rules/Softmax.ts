// Softmax (opset 13+, a single axis; before 13 it meant "coerce to 2-D", refused via
// minOpset). dX = Y * (dY - sum(dY * Y, axis)).
import type { RuleEntry } from '../types';

export const Softmax: RuleEntry = {
  opType: 'Softmax',
  minOpset: 13,
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const y = ctx.output(0);
    const axis = ctx.attrInt('axis', -1);
    const dot = emit.reduceSum(emit.op('Mul', [dy, y], undefined, 'dy_y'), [axis], true, 'sum_dy_y');
    return [emit.op('Mul', [y, emit.op('Sub', [dy, dot], undefined, 'dy_minus_dot')], undefined, 'dx')];
  },
};
