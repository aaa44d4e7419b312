// MatMul with numpy semantics: batched, batch axes broadcast, and 1-D operands
// (a 1-D A is a row vector whose axis is dropped from Y, a 1-D B a column vector).
// The transposes swap the last two axes, so ranks must be known statically; real
// exports always have them. The common case Y = X[..., K] @ W[K, N] computes dW as
// one Gemm over the flattened rows instead of a batched product summed afterwards.
import { A } from '../../onnx/attrs';
import { unbroadcast } from '../unbroadcast';
import { requireRank, sameDim } from '../static-shape';
import type { Dim, RuleContext, RuleEntry } from '../types';

/** Swap the last two axes of a rank-r tensor. */
function swapLast(ctx: RuleContext, x: string, r: number, what: string): string {
  const perm = Array.from({ length: r }, (_, k) => k);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return ctx.emit.op('Transpose', [x], { perm: A.ints(perm) }, what);
}

/** Batch dims equal statically, so neither operand was broadcast against the other. */
function sameBatch(a: Dim[] | undefined, b: Dim[] | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.slice(0, -2).every((d, k) => sameDim(d, b[k]));
}

/** Sum a batched product back to the shape of `target` (a >= 2-D operand). */
function toOperand(ctx: RuleContext, full: string, target: string): string {
  const y = ctx.shape(ctx.output(0));
  const t = ctx.shape(target);
  if (y && t) ctx.emit.declareShape(full, [...y.slice(0, -2), ...t.slice(-2)]);
  return unbroadcast(ctx.emit, full, target);
}

export const MatMul: RuleEntry = {
  opType: 'MatMul',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    const wantA = !!dy && ctx.needsGrad(0);
    const wantB = !!dy && ctx.needsGrad(1);
    if (!dy || (!wantA && !wantB)) return [null, null];
    const { emit } = ctx;
    const a = ctx.input(0);
    const b = ctx.input(1);
    const ra = requireRank(ctx, a);
    const rb = requireRank(ctx, b);
    let dA: string | null = null;
    let dB: string | null = null;

    if (ra === 1 && rb === 1) {
      // Y is the scalar dot product.
      if (wantA) dA = emit.op('Mul', [dy, b], undefined, 'da');
      if (wantB) dB = emit.op('Mul', [dy, a], undefined, 'db');
    } else if (ra === 1) {
      // A[K] @ B[..., K, N] = Y[..., N]; dY[..., 1, N] restores the dropped row axis.
      const dyRow = emit.unsqueeze(dy, [-2], 'dy_row');
      if (wantA) {
        const full = emit.op('MatMul', [dyRow, swapLast(ctx, b, rb, 'b_t')], undefined, 'da_rows');
        dA = emit.reduceSum(full, Array.from({ length: rb - 1 }, (_, k) => k), false, 'da');
      }
      if (wantB) dB = emit.op('MatMul', [emit.unsqueeze(a, [1], 'a_col'), dyRow], undefined, 'db');
    } else if (rb === 1) {
      // A[..., M, K] @ B[K] = Y[..., M].
      if (wantA) {
        const dyCol = emit.unsqueeze(dy, [-1], 'dy_col');
        dA = emit.op('MatMul', [dyCol, emit.unsqueeze(b, [0], 'b_row')], undefined, 'da');
      }
      if (wantB) {
        // dB[k] = sum over all rows r of dY[r] * A[r, k].
        const dyFlat = emit.reshape(dy, emit.int64s([-1], 'flat'), 'dy_flat');
        const aRows = ra === 2 ? a : emit.op('Flatten', [a], { axis: A.int(-1) }, 'a_rows');
        dB = emit.op('MatMul', [dyFlat, aRows], undefined, 'db');
      }
    } else if (rb === 2) {
      // Y[..., M, N] = A[..., M, K] @ W[K, N]: A's batch is Y's batch.
      if (wantA) dA = emit.op('MatMul', [dy, swapLast(ctx, b, 2, 'b_t')], undefined, 'da');
      if (wantB) {
        const aRows = ra === 2 ? a : emit.op('Flatten', [a], { axis: A.int(-1) }, 'a_rows');
        const dyRows = ra === 2 ? dy : emit.op('Flatten', [dy], { axis: A.int(-1) }, 'dy_rows');
        dB = emit.op('Gemm', [aRows, dyRows], { transA: A.int(1) }, 'db');
      }
    } else {
      // Batched on both sides. An operand needs summing only where it was broadcast;
      // a 2-D A has no batch, so B's batch is Y's.
      const same = sameBatch(ctx.shape(a), ctx.shape(b));
      const directA = same;
      const directB = same || ra === 2;
      if (wantA) {
        const full = emit.op('MatMul', [dy, swapLast(ctx, b, rb, 'b_t')], undefined, directA ? 'da' : 'da_full');
        dA = directA ? full : toOperand(ctx, full, a);
      }
      if (wantB) {
        const full = emit.op('MatMul', [swapLast(ctx, a, ra, 'a_t'), dy], undefined, directB ? 'db' : 'db_full');
        dB = directB ? full : toOperand(ctx, full, b);
      }
    }
    return [dA, dB];
  },
};
