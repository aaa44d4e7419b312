// d(A ^ B): dY * B * A^(B-1) for the base; dY * Y * ln(A) for the exponent
// (only built when the exponent is trainable, since ln(A) is NaN for A <= 0).
// Pow-12+ allows an integer exponent with a float base, so B is CastLike'd to A.
// A constant exponent (every exported LayerNorm squares with Pow(x, 2)) gets a
// cheaper gradient: dY * 2A for 2, dY for 1, and otherwise the derivative with
// its constants folded, since a generic Pow with exponent 1 costs a pow() call
// per element (profiled at ~5% of a BERT training step).
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

/** The exponent's single value, when it is a constant that receives no gradient. */
function constantExponent(ctx: RuleContext): number | undefined {
  if (ctx.needsGrad(1)) return undefined;
  const v = ctx.constNumbers(1);
  return v && v.length >= 1 && v.every((x) => x === v[0]) ? v[0] : undefined;
}

/** dY * dA^B/dA for a constant B, shaped like Y (unbroadcast then sums B's broadcast away). */
function constantExponentGrad(ctx: RuleContext, dy: string, b: number): string {
  const { emit } = ctx;
  const a = ctx.input(0);
  if (b === 1) return dy;
  if (b === 2) return emit.op('Mul', [emit.op('Mul', [dy, a], undefined, 'dy_a'), emit.float(2, 'two')], undefined, 'da_full');
  const pow = b === 3 ? emit.op('Mul', [a, a], undefined, 'a_squared') : emit.op('Pow', [a, emit.float(b - 1, 'exponent_minus_1')], undefined, 'pow_minus_1');
  return emit.op('Mul', [emit.op('Mul', [dy, pow], undefined, 'dy_pow'), emit.float(b, 'exponent')], undefined, 'da_full');
}

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
      const constant = constantExponent(ctx);
      let full: string;
      if (constant !== undefined) {
        full = constantExponentGrad(ctx, dy, constant);
      } else {
        const bf = emit.op('CastLike', [b, a], undefined, 'exponent');
        const bMinus1 = emit.op('Sub', [bf, emit.float(1, 'one')], undefined, 'exponent_minus_1');
        const deriv = emit.op('Mul', [bf, emit.op('Pow', [a, bMinus1], undefined, 'pow_minus_1')], undefined, 'dpow_da');
        full = emit.op('Mul', [dy, deriv], undefined, 'da_full');
      }
      dA = unbroadcast(emit, shapedLikeOutput(ctx, full), a);
    }
    let dB: string | null = null;
    if (ctx.needsGrad(1)) {
      const yLog = emit.op('Mul', [ctx.output(0), emit.op('Log', [a], undefined, 'log_a')], undefined, 'y_log_a');
      dB = unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Mul', [dy, yLog], undefined, 'db_full')), b);
    }
    return [dA, dB];
  },
};
