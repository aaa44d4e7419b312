// d(A - B): dY for A and -dY for B, each summed over the axes it was broadcast along.
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleEntry } from '../types';

export const Sub: RuleEntry = {
  opType: 'Sub',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null];
    const dA = ctx.needsGrad(0) ? unbroadcast(ctx.emit, dy, ctx.input(0)) : null;
    const dB = ctx.needsGrad(1) ? unbroadcast(ctx.emit, shapedLikeOutput(ctx, ctx.emit.op('Neg', [dy], undefined, 'neg_dy')), ctx.input(1)) : null;
    return [dA, dB];
  },
};
