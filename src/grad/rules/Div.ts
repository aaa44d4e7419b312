// d(A / B): dY / B for A; -dY * A / B^2 = -dY * Y / B for B (reusing the forward output).
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleEntry } from '../types';

export const Div: RuleEntry = {
  opType: 'Div',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null];
    const { emit } = ctx;
    const b = ctx.input(1);
    const dA = ctx.needsGrad(0) ? unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Div', [dy, b], undefined, 'dy_over_b')), ctx.input(0)) : null;
    let dB: string | null = null;
    if (ctx.needsGrad(1)) {
      const yOverB = emit.op('Div', [ctx.output(0), b], undefined, 'y_over_b');
      const prod = emit.op('Mul', [dy, yOverB], undefined, 'dy_y_over_b');
      dB = unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Neg', [prod], undefined, 'neg_dy_y_over_b')), b);
    }
    return [dA, dB];
  },
};
