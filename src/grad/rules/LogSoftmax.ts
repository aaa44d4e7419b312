// LogSoftmax (opset 13+, a single axis; older versions coerce to 2-D and are refused
// via minOpset). dX = dY - exp(Y) * sum(dY, axis).
import type { RuleEntry } from '../types';

export const LogSoftmax: RuleEntry = {
  opType: 'LogSoftmax',
  minOpset: 13,
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const { emit } = ctx;
    const axis = ctx.attrInt('axis', -1);
    const total = emit.reduceSum(dy, [axis], true, 'sum_dy');
    const softmax = emit.op('Exp', [ctx.output(0)], undefined, 'softmax');
    return [emit.op('Sub', [dy, emit.op('Mul', [softmax, total], undefined, 'softmax_sum_dy')], undefined, 'dx')];
  },
};
