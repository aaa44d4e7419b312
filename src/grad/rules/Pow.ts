// d(A ^ B): dY * B * A^(B-1) for the base; dY * Y * ln(A) for the exponent
// (only built when the exponent is trainable, since ln(A) is NaN for A <= 0).
// Pow-12+ allows an integer exponent with a float base, so B is CastLike'd to A.
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleEntry } from '../types';

export const Pow: RuleEntry = {
  opType: 'Pow',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null];
    const { emit } = ctx;
    const a = ctx.input(0);
    const b = ctx.input(1);
    let dA: string | null = null;
    if (ctx.needsGrad(0)) {
      const bf = emit.op('CastLike', [b, a], undefined, 'exponent');
      const bMinus1 = emit.op('Sub', [bf, emit.float(1, 'one')], undefined, 'exponent_minus_1');
      const deriv = emit.op('Mul', [bf, emit.op('Pow', [a, bMinus1], undefined, 'pow_minus_1')], undefined, 'dpow_da');
      dA = unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Mul', [dy, deriv], undefined, 'da_full')), a);
    }
    let dB: string | null = null;
    if (ctx.needsGrad(1)) {
      const yLog = emit.op('Mul', [ctx.output(0), emit.op('Log', [a], undefined, 'log_a')], undefined, 'y_log_a');
      dB = unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Mul', [dy, yLog], undefined, 'db_full')), b);
    }
    return [dA, dB];
  },
};
