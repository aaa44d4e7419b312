// Gelu (opset 20). approximate='none': Y = X * Phi(X), so dX = dY * (Phi(X) + X * phi(X))
// with phi the standard normal density. approximate='tanh': Y = X/2 * (1 + tanh(u)),
// u = sqrt(2/pi) (X + 0.044715 X^3), so dX = dY * (0.5 (1 + t) + 0.5 X (1 - t^2) du/dX).
import { nodeError } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

const TANH_COEF = 0.044715;

function exact(ctx: RuleContext, x: string): string {
  const { emit } = ctx;
  const cdfErf = emit.op('Erf', [emit.op('Mul', [x, emit.float(Math.SQRT1_2, 'inv_sqrt2')], undefined, 'x_over_sqrt2')], undefined, 'erf');
  const cdf = emit.op('Mul', [emit.op('Add', [cdfErf, emit.float(1, 'one')], undefined, 'one_plus_erf'), emit.float(0.5, 'half')], undefined, 'cdf');
  const xSq = emit.op('Mul', [x, x], undefined, 'x_squared');
  const gauss = emit.op('Exp', [emit.op('Mul', [xSq, emit.float(-0.5, 'neg_half')], undefined, 'neg_half_x_squared')], undefined, 'exp_neg_half_x_squared');
  const pdf = emit.op('Mul', [gauss, emit.float(1 / Math.sqrt(2 * Math.PI), 'inv_sqrt_2pi')], undefined, 'pdf');
  return emit.op('Add', [cdf, emit.op('Mul', [x, pdf], undefined, 'x_pdf')], undefined, 'dgelu');
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
    const deriv = approximate === 'tanh' ? tanhApprox(ctx, ctx.input(0)) : exact(ctx, ctx.input(0));
    return [ctx.emit.op('Mul', [dy, deriv], undefined, 'dx')];
  },
};
