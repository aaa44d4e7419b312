// d Gather(X, indices, axis): dY's slices are added back into zeros shaped like
// X at the gathered positions; a repeated index (the same token id twice in
// an embedding lookup) accumulates. Negative indices are wrapped first.
// Scalar and multi-dim indices both flatten to N. Two exact paths:
//  - Small table (axis 0, X's shape static, V = X.shape[0] <= 64: token-type
//    embeddings): dX = Gemm(onehot[N, V], dY[N, D], transA) with
//    onehot = Equal(indices[N, 1], 0..V-1). onnxruntime's ScatterElements is a
//    scalar loop: for the [2, 256] token-type table of the bench model (batch
//    8x128) it cost ~1.4 ms plus ~0.4 ms for the int64 Expand of the indices
//    per step, while the product is 2*N*V*D FLOPs, negligible for few rows. For
//    the position table (V = 512) and vocabularies the FLOPs grow with V, so
//    those keep the scatter.
//  - Everything else: dY as [...before, N, ...after] and ScatterElements
//    (reduction='add', opset 16, which training graphs import at least) along
//    the axis with the indices broadcast to that shape. Not ScatterND:
//    onnxruntime's multi-threaded ScatterND(reduction='add') loses updates when
//    many rows add into the same row (a token-type table, [PAD], frequent
//    words), giving wrong and run-to-run varying gradients. Along axis 0 the
//    emitter also records the row-sparse form (dY's rows and their indices), which
//    training graphs output instead when asked (rowSparseGradients): a vocabulary
//    table's dense gradient is mostly zero rows, costly to fill, scatter and fetch.
import { A } from '../../onnx/attrs';
import { DataType } from '../../onnx/proto';
import { asInt64, dimAt, dimsAfter, dimsBefore, int64Fill, shapeOf, wrapNegative, zerosOfShape } from '../shapeOps';
import { constDims } from '../static-shape';
import type { RuleContext, RuleEntry } from '../types';

/** Largest table (rows) whose gradient is a one-hot product rather than a scatter. */
export const MAX_ONEHOT_ROWS = 64;

/** dX[V, ...] = onehot(indices)^T @ dY[N, D], reshaped back to X's static shape. */
function oneHotGrad(ctx: RuleContext, dy: string, indices: string, xDims: number[]): string {
  const { emit } = ctx;
  const V = xDims[0];
  const D = xDims.slice(1).reduce((a, b) => a * b, 1);
  const column = emit.reshape(indices, emit.int64s([-1, 1], 'column_shape'), 'indices_column');
  const rowIds = emit.int64s(Array.from({ length: V }, (_, k) => k), 'row_ids');
  const hit = emit.op('Equal', [column, rowIds], undefined, 'onehot_bool');
  const onehot = emit.op('Cast', [hit], { to: A.int(DataType.FLOAT) }, 'onehot');
  const dyFlat = emit.reshape(dy, emit.int64s([-1, D], 'dy_rows_shape'), 'dy_rows');
  if (xDims.length === 2) return emit.op('Gemm', [onehot, dyFlat], { transA: A.int(1) }, 'dx');
  const rows = emit.op('Gemm', [onehot, dyFlat], { transA: A.int(1) }, 'dx_rows');
  return emit.reshape(rows, emit.int64s(xDims, 'x_shape'), 'dx');
}

export const Gather: RuleEntry = {
  opType: 'Gather',
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null, null];
    const { emit } = ctx;
    const x = ctx.input(0);
    const axis = ctx.attrInt('axis', 0);
    const xDims = constDims(ctx.shape(x));
    const indices = wrapNegative(emit, asInt64(emit, ctx.input(1), 'indices_i64'), dimAt(ctx, x, axis), 'indices');
    // D = 0 would make Reshape(dY, [-1, 0]) ambiguous; such a table has no gradient to speak of.
    const onAxis0 = xDims !== undefined && (axis < 0 ? axis + xDims.length : axis) === 0;
    if (onAxis0 && xDims[0] <= MAX_ONEHOT_ROWS && xDims.every((d) => d > 0)) return [oneHotGrad(ctx, dy, indices, xDims), null];

    const zeros = zerosOfShape(emit, shapeOf(ctx, x));
    const minusOne = emit.int64s([-1], 'minus_one');
    const before = dimsBefore(ctx, x, axis);
    const after = dimsAfter(ctx, x, axis);
    const dyShape = emit.op('Concat', [before, minusOne, after], { axis: A.int(0) }, 'dy_flat_shape');
    const dyFlat = emit.op('Reshape', [dy, dyShape], undefined, 'dy_flat');
    const onesBefore = int64Fill(emit, emit.shape(before), 1, 'ones_before');
    const onesAfter = int64Fill(emit, emit.shape(after), 1, 'ones_after');
    const idxShape = emit.op('Concat', [onesBefore, minusOne, onesAfter], { axis: A.int(0) }, 'indices_shape');
    const idx = emit.op('Expand', [emit.reshape(indices, idxShape, 'indices_line'), emit.shape(dyFlat)], undefined, 'indices_full');
    const dx = emit.op('ScatterElements', [zeros, idx, dyFlat], { axis: A.int(axis), reduction: A.string('add') }, 'dx');
    // Along axis 0 the rows of dY_flat are whole rows of dX: the row-sparse form (dead unless used).
    if (onAxis0) emit.rowGrads.set(dx, { rows: dyFlat, indices: emit.reshape(indices, minusOne, 'row_indices') });
    return [dx, null];
  },
};
