// Gemm: Y = alpha * A' @ B' + beta * C, with A' = transA ? A^T : A (same for B) and
// C optional, unidirectionally broadcast to Y. Each operand's gradient is one Gemm
// whose trans flags absorb the transposes:
//   dA' = alpha dY B'^T,  dB' = alpha A'^T dY,  dC = beta * dY summed over broadcast axes.
import { A } from '../../onnx/attrs';
import { unbroadcast } from '../unbroadcast';
import { shapedLikeOutput } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

function gemm(ctx: RuleContext, x: string, tx: boolean, y: string, ty: boolean, alpha: number, what: string): string {
  return ctx.emit.op('Gemm', [x, y], {
    transA: tx ? A.int(1) : undefined,
    transB: ty ? A.int(1) : undefined,
    alpha: alpha !== 1 ? A.float(alpha) : undefined,
  }, what);
}

export const Gemm: RuleEntry = {
  opType: 'Gemm',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy) return [null, null, null].slice(0, ctx.numInputs);
    const a = ctx.input(0);
    const b = ctx.input(1);
    const transA = ctx.attrInt('transA', 0) !== 0;
    const transB = ctx.attrInt('transB', 0) !== 0;
    const alpha = ctx.attrFloat('alpha', 1);
    const beta = ctx.attrFloat('beta', 1);
    let dA: string | null = null;
    if (ctx.needsGrad(0)) {
      // transA: dA = (dA')^T = alpha B' dY^T.
      dA = transA ? gemm(ctx, b, transB, dy, true, alpha, 'da') : gemm(ctx, dy, false, b, !transB, alpha, 'da');
    }
    let dB: string | null = null;
    if (ctx.needsGrad(1)) {
      // transB: dB = (dB')^T = alpha dY^T A'.
      dB = transB ? gemm(ctx, dy, true, a, transA, alpha, 'db') : gemm(ctx, a, !transA, dy, false, alpha, 'db');
    }
    let dC: string | null = null;
    if (ctx.needsGrad(2)) {
      const scaled = beta === 1 ? dy : shapedLikeOutput(ctx, ctx.emit.op('Mul', [dy, ctx.emit.float(beta, 'beta')], undefined, 'beta_dy'));
      dC = unbroadcast(ctx.emit, scaled, ctx.input(2));
    }
    return [dA, dB, dC].slice(0, ctx.numInputs);
  },
};
