// Where(C, X, Y): dY flows to X where C holds and to Y elsewhere, each then summed
// over its broadcast axes. The condition is not differentiable.
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleEntry } from '../types';

export const Where: RuleEntry = {
  opType: 'Where',
  nonDifferentiable: [0],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null, null];
    const { emit } = ctx;
    const cond = ctx.input(0);
    const zero = emit.float(0, 'zero');
    const dX = ctx.needsGrad(1) ? unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Where', [cond, dy, zero], undefined, 'dy_where_true')), ctx.input(1)) : null;
    const dY = ctx.needsGrad(2) ? unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Where', [cond, zero, dy], undefined, 'dy_where_false')), ctx.input(2)) : null;
    return [null, dX, dY];
  },
};
