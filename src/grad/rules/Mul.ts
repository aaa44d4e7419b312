// d(A * B): dY * B for A and dY * A for B, each summed over its broadcast axes.
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleEntry } from '../types';

export const Mul: RuleEntry = {
  opType: 'Mul',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null];
    const grad = (i: number, other: number, what: string) =>
      ctx.needsGrad(i) ? unbroadcast(ctx.emit, shapedLikeOutput(ctx, ctx.emit.op('Mul', [dy, ctx.input(other)], undefined, what)), ctx.input(i)) : null;
    return [grad(0, 1, 'dy_b'), grad(1, 0, 'dy_a')];
  },
};
