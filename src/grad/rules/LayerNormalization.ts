// LayerNormalization (opset 17) over the axes [axis, ..., rank-1]:
//   xhat = (X - mean) * invstd,  Y = xhat * Scale + B  (Scale and B broadcast).
// With g = dY * Scale and means over the normalized axes,
//   dX = invstd * (g - mean(g) - xhat * mean(g * xhat)),
//   dScale = sum of dY * xhat over broadcast axes,  dB = sum of dY likewise.
// The optional Mean/InvStdDev outputs are reused when present (stash_type 1, the float
// default) and otherwise recomputed. If they ever receive a gradient it is added:
//   d/dX of mean is 1/N, of invstd is -invstd^3 (X - mean) / N.
import { unbroadcast } from '../unbroadcast';
import { constDims, nodeError, requireRank, shapedLikeOutput } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

/** The normalized axes as negative numbers, which need the rank only for a non-negative `axis`. */
function normalizedAxes(ctx: RuleContext): number[] {
  const axis = ctx.attrInt('axis', -1);
  const count = axis < 0 ? -axis : requireRank(ctx, ctx.input(0)) - axis;
  if (count <= 0) throw nodeError(ctx, `axis ${axis} is out of range`);
  return Array.from({ length: count }, (_, k) => k - count);
}

export const LayerNormalization: RuleEntry = {
  opType: 'LayerNormalization',
  minOpset: 17,
  rule: (ctx) => {
    const out: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
    const dy = ctx.gradOutput(0);
    const dMean = ctx.gradOutput(1);
    const dInv = ctx.gradOutput(2);
    const wantX = ctx.needsGrad(0) && !!(dy || dMean || dInv);
    const wantScale = ctx.needsGrad(1) && !!dy;
    if (ctx.needsGrad(2) && dy) out[2] = unbroadcast(ctx.emit, dy, ctx.input(2));
    if (!wantX && !wantScale) return out;

    const { emit } = ctx;
    const x = ctx.input(0);
    const scale = ctx.input(1);
    const axes = normalizedAxes(ctx);
    const eps = ctx.attrFloat('epsilon', 1e-5);
    const stashFloat = ctx.attrInt('stash_type', 1) === 1;

    // 1/N as a constant when the normalized dims are static (the hidden size usually is).
    const xDims = ctx.shape(x);
    const normDims = constDims(xDims?.slice(xDims.length + axes[0]));
    const sumX = () => emit.reduceSum(x, axes, true, 'sum_x');
    let invN: string;
    let sumXCache: string | undefined;
    if (normDims && xDims && xDims.length >= axes.length) {
      invN = emit.float(1 / normDims.reduce((p, d) => p * d, 1), 'inv_n');
    } else {
      sumXCache = sumX();
      const n = emit.op('Div', [emit.op('Size', [x], undefined, 'size_x'), emit.op('Size', [sumXCache], undefined, 'size_rows')], undefined, 'n');
      invN = emit.op('Reciprocal', [emit.op('CastLike', [n, x], undefined, 'n_float')], undefined, 'inv_n');
    }
    const meanOf = (t: string, what: string) => emit.op('Mul', [emit.reduceSum(t, axes, true, `sum_${what}`), invN], undefined, `mean_${what}`);

    const meanOut = ctx.output(1);
    const invOut = ctx.output(2);
    const mean = meanOut && stashFloat ? meanOut : emit.op('Mul', [sumXCache ?? sumX(), invN], undefined, 'mean_x');
    const xc = emit.op('Sub', [x, mean], undefined, 'x_centered');
    let invstd: string;
    if (invOut && stashFloat) {
      invstd = invOut;
    } else {
      const variance = meanOf(emit.op('Mul', [xc, xc], undefined, 'x_centered_squared'), 'var');
      invstd = emit.op('Reciprocal', [emit.op('Sqrt', [emit.op('Add', [variance, emit.float(eps, 'epsilon')], undefined, 'var_eps')], undefined, 'std')], undefined, 'invstd');
    }
    const xhat = emit.op('Mul', [xc, invstd], undefined, 'xhat');

    if (wantScale && dy) out[1] = unbroadcast(emit, shapedLikeOutput(ctx, emit.op('Mul', [dy, xhat], undefined, 'dy_xhat')), scale);
    if (!wantX) return out;

    const terms: string[] = [];
    if (dy) {
      const g = emit.op('Mul', [dy, scale], undefined, 'g');
      const centered = emit.op('Sub', [g, meanOf(g, 'g')], undefined, 'g_centered');
      const proj = emit.op('Mul', [xhat, meanOf(emit.op('Mul', [g, xhat], undefined, 'g_xhat'), 'g_xhat')], undefined, 'xhat_proj');
      terms.push(emit.op('Mul', [invstd, emit.op('Sub', [centered, proj], undefined, 'g_orth')], undefined, 'dx_y'));
    }
    if (dInv) {
      const inv3 = emit.op('Mul', [invstd, emit.op('Mul', [invstd, invstd], undefined, 'invstd_sq')], undefined, 'invstd_cubed');
      const coef = emit.op('Neg', [emit.op('Mul', [emit.op('Mul', [dInv, inv3], undefined, 'dinv_invstd_cubed'), invN], undefined, 'dinv_coef_pos')], undefined, 'dinv_coef');
      terms.push(emit.op('Mul', [coef, xc], undefined, 'dx_invstd'));
    }
    if (dMean) {
      const spread = emit.op('Mul', [dMean, invN], undefined, 'dmean_over_n');
      // Alone it must still be broadcast to X's shape.
      terms.push(terms.length ? spread : emit.op('Expand', [spread, emit.shape(x)], undefined, 'dx_mean'));
    }
    out[0] = terms.length === 1 ? terms[0] : emit.op('Sum', terms, undefined, 'dx');
    return out;
  },
};
