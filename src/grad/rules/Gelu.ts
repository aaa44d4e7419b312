// Gelu (opset 20). approximate='none': Y = X * Phi(X), so dX = dY * (Phi(X) + X * phi(X))
// with phi the standard normal density. approximate='tanh': Y = X/2 * (1 + tanh(u)),
// u = sqrt(2/pi) (X + 0.044715 X^3), so dX = dY * (0.5 (1 + t) + 0.5 X (1 - t^2) du/dX).
import { nodeError } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

const TANH_COEF = 0.044715;

/**
 * 2 * dGelu/dX = 1 + erf(t) + 2 X phi(X) with t = X / sqrt2; the 2 phi(X) =
 * sqrt(2/pi) exp(-t^2) folds its constant into the exponent, exp(ln sqrt(2/pi) - t*t),
 * and reuses t: seven passes over X (the FFN's widest activation in a BERT). The 1/2
 * goes on dY, where onnxruntime folds it into the MatMul that produced dY.
 */
function exactTimesTwo(ctx: RuleContext, x: string): string {
  const { emit } = ctx;
  const t = emit.op('Mul', [x, emit.float(Math.SQRT1_2, 'inv_sqrt2')], undefined, 'x_over_sqrt2');
  const erf = emit.op('Erf', [t], undefined, 'erf');
  const exponent = emit.op('Sub', [emit.float(Math.log(Math.sqrt(2 / Math.PI)), 'log_sqrt_2_over_pi'), emit.op('Mul', [t, t], undefined, 't_squared')], undefined, 'exponent');
  const xPdf2 = emit.op('Mul', [x, emit.op('Exp', [exponent], undefined, 'pdf_times_two')], undefined, 'x_pdf_times_two');
  // Two Adds: a Sum with a broadcast scalar operand runs onnxruntime's slow generic broadcast path.
  return emit.op('Add', [emit.op('Add', [erf, emit.float(1, 'one')], undefined, 'one_plus_erf'), xPdf2], undefined, 'dgelu_times_two');
}

function tanhApprox(ctx: RuleContext, x: string): string {
  const { emit } = ctx;
  const c = Math.sqrt(2 / Math.PI);
  const xSq = emit.op('Mul', [x, x], undefined, 'x_squared');
  // u = c * x * (1 + k x^2); du/dx = c * (1 + 3k x^2)
  const inner = emit.op('Add', [emit.float(1, 'one'), emit.op('Mul', [xSq, emit.float(TANH_COEF, 'k')], undefined, 'k_x_squared')], undefined, 'one_plus_k_x_squared');
  const u = emit.op('Mul', [emit.op('Mul', [x, inner], undefined, 'x_inner'), emit.float(c, 'sqrt_2_over_pi')], undefined, 'u');
  const t = emit.op('Tanh', [u], undefined, 't');
  const du = emit.op('Mul', [emit.op('Add', [emit.float(1, 'one'), emit.op('Mul', [xSq, emit.float(3 * TANH_COEF, 'three_k')], undefined, 'three_k_x_squared')], undefined, 'one_plus_three_k_x_squared'), emit.float(c, 'sqrt_2_over_pi')], undefined, 'du_dx');
  const half = emit.float(0.5, 'half');
  const left = emit.op('Mul', [emit.op('Add', [t, emit.float(1, 'one')], undefined, 'one_plus_t'), half], undefined, 'left');
  const sech2 = emit.op('Sub', [emit.float(1, 'one'), emit.op('Mul', [t, t], undefined, 't_squared')], undefined, 'one_minus_t_squared');
  const right = emit.op('Mul', [emit.op('Mul', [emit.op('Mul', [x, half], undefined, 'half_x'), sech2], undefined, 'half_x_sech2'), du], undefined, 'right');
  return emit.op('Add', [left, right], undefined, 'dgelu');
}

export const Gelu: RuleEntry = {
  opType: 'Gelu',
  minOpset: 20,
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const approximate = ctx.attrString('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') throw nodeError(ctx, `unknown approximate='${approximate}'`);
    const { emit } = ctx;
    if (approximate === 'tanh') return [emit.op('Mul', [dy, tanhApprox(ctx, ctx.input(0))], undefined, 'dx')];
    const halfDy = emit.op('Mul', [dy, emit.float(0.5, 'half')], undefined, 'half_dy');
    return [emit.op('Mul', [halfDy, exactTimesTwo(ctx, ctx.input(0))], undefined, 'dx')];
  },
};
