// d Gather(X, indices, axis): dY's slices are added back into zeros shaped like
// X at the gathered positions; a repeated index (the same token id twice in
// an embedding lookup) accumulates, hence reduction='add' (opset 16, which
// training graphs import at least). Negative indices are wrapped first.
//  dY as [...before, N, ...after] and ScatterElements along the axis with the
//  indices broadcast to that shape, for every axis including 0 (embeddings).
//  Not ScatterND: onnxruntime's multi-threaded ScatterND(reduction='add') loses
//  updates when many rows add into the same row (a token-type table, [PAD],
//  frequent words), giving wrong and run-to-run varying gradients.
// Scalar and multi-dim indices both flatten to N; shapes come from Shape(X).
import { A } from '../../onnx/attrs';
import { asInt64, dimAt, dimsAfter, dimsBefore, int64Fill, shapeOf, wrapNegative, zerosOfShape } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Gather: RuleEntry = {
  opType: 'Gather',
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null, null];
    const { emit } = ctx;
    const x = ctx.input(0);
    const axis = ctx.attrInt('axis', 0);
    const zeros = zerosOfShape(emit, shapeOf(ctx, x));
    const indices = wrapNegative(emit, asInt64(emit, ctx.input(1), 'indices_i64'), dimAt(ctx, x, axis), 'indices');
    const minusOne = emit.int64s([-1], 'minus_one');
    const before = dimsBefore(ctx, x, axis);
    const after = dimsAfter(ctx, x, axis);
    const dyShape = emit.op('Concat', [before, minusOne, after], { axis: A.int(0) }, 'dy_flat_shape');
    const dyFlat = emit.op('Reshape', [dy, dyShape], undefined, 'dy_flat');
    const onesBefore = int64Fill(emit, emit.shape(before), 1, 'ones_before');
    const onesAfter = int64Fill(emit, emit.shape(after), 1, 'ones_after');
    const idxShape = emit.op('Concat', [onesBefore, minusOne, onesAfter], { axis: A.int(0) }, 'indices_shape');
    const idx = emit.op('Expand', [emit.reshape(indices, idxShape, 'indices_line'), emit.shape(dyFlat)], undefined, 'indices_full');
    return [emit.op('ScatterElements', [zeros, idx, dyFlat], { axis: A.int(axis), reduction: A.string('add') }, 'dx'), null];
  },
};
