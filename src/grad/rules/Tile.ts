// d Tile(X, repeats): along axis i, Y = [X, X, ..., X] (repeats[i] copies), so
// reshaping dY to [r0, d0, r1, d1, ...] and summing the r axes gives dX.
// The interleaved shape and the reduce axes are built in-graph unless known.
import { A } from '../../onnx/attrs';
import { GrlError } from '../../onnx/errors';
import { asInt64, int64Scalar, shapeOf } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Tile: RuleEntry = {
  opType: 'Tile',
  minOpset: 6,
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null, null];
    if (ctx.opset < 6) throw new GrlError(`Tile node '${ctx.node.name}': opset ${ctx.opset} Tile (tiles/axis inputs) has no gradient rule; opset 6+ is supported`);
    const { emit } = ctx;
    const x = ctx.input(0);
    const reps = ctx.constInts(1);
    const dims = ctx.shape(x);
    let interleaved: string;
    if (reps && dims && dims.every((d): d is number => typeof d === 'number')) {
      interleaved = emit.int64s(reps.flatMap((r, i) => [r, dims[i]]), 'interleaved_shape');
    } else {
      const r = emit.unsqueeze(reps ? emit.int64s(reps, 'repeats') : asInt64(emit, ctx.input(1), 'repeats'), [1], 'repeats_col');
      const d = emit.unsqueeze(shapeOf(ctx, x), [1], 'dims_col');
      interleaved = emit.reshape(emit.op('Concat', [r, d], { axis: A.int(1) }, 'pairs'), emit.int64s([-1], 'flat'), 'interleaved_shape');
    }
    let axes: number[] | string;
    if (reps) axes = reps.map((_, i) => 2 * i);
    else {
      const rank = emit.op('Size', [ctx.input(1)], undefined, 'rank');
      const two = int64Scalar(emit, 2, 'two');
      const twice = emit.op('Mul', [rank, two], undefined, 'rank_x2');
      axes = emit.op('Range', [int64Scalar(emit, 0, 'zero_s'), twice, two], undefined, 'repeat_axes');
    }
    const split = emit.op('Reshape', [dy, interleaved], { allowzero: A.int(1) }, 'dy_interleaved');
    return [emit.reduceSum(split, axes, false, 'dx'), null];
  },
};
