// d Slice(X, starts, ends, axes, steps): dY lands back at the positions the
// slice read; everything else gets 0. Two exact paths:
//  - steps all 1 (the common case): Pad(dY) with begin = the clamped start and
//    end = dim - begin - dY's dim, computed in-graph per sliced axis;
//  - any steps (negative, > 1): slice a tensor of flat positions 0..numel-1
//    with the very same starts/ends/axes/steps, then ScatterElements dY into
//    zeros at those positions. Reusing Slice itself keeps the spec's clamping,
//    negative indices and INT64_MAX ends exactly as the forward pass saw them.
// Opsets 1-9 (starts/ends as attributes) are refused.
import { A } from '../../onnx/attrs';
import { GrlError } from '../../onnx/errors';
import { asInt64, int64Fill, int64Scalar, rankTensor, shapeOf, wrapNegative, zerosOfShape } from '../shapeOps';
import type { RuleContext, RuleEntry } from '../types';

interface SliceArgs { starts: string; ends: string; axes?: string; steps?: string; unitSteps: boolean }

function sliceArgs(ctx: RuleContext): SliceArgs {
  if (ctx.opset < 10) {
    // Training graphs import opset >= 16, where an attribute-style Slice is not even valid.
    throw new GrlError(`Slice node '${ctx.node.name}': opset ${ctx.opset} Slice (starts/ends as attributes) has no gradient rule; opset 10+ is supported`);
  }
  const steps = ctx.input(4) || undefined;
  const constSteps = steps ? ctx.constInts(4) : [];
  return {
    starts: ctx.input(1),
    ends: ctx.input(2),
    axes: ctx.input(3) || undefined,
    steps,
    unitSteps: !!constSteps && constSteps.every((s) => s === 1),
  };
}

function padBack(ctx: RuleContext, dy: string, a: SliceArgs): string {
  const { emit } = ctx;
  const x = ctx.input(0);
  const shapeX = emit.shape(x);
  const rank = rankTensor(ctx, x);
  const starts = asInt64(emit, a.starts, 'starts');
  const axes = a.axes
    ? wrapNegative(emit, asInt64(emit, a.axes, 'axes_i64'), rank, 'axes')
    : emit.op('Range', [int64Scalar(emit, 0, 'zero_s'), emit.op('Size', [a.starts], undefined, 'num_axes'), int64Scalar(emit, 1, 'one_s')], undefined, 'axes');
  const dims = emit.op('Gather', [shapeX, axes], undefined, 'dims');
  const outDims = emit.op('Gather', [emit.shape(ctx.output(0)), axes], undefined, 'out_dims');
  // Positive steps clamp starts into [0, dim] after counting negatives from the end.
  const zero = emit.int64s([0], 'zero');
  const begin = emit.op('Min', [emit.op('Max', [wrapNegative(emit, starts, dims, 'starts_wrapped'), zero], undefined, 'starts_ge0'), dims], undefined, 'begin');
  const end = emit.op('Sub', [emit.op('Sub', [dims, begin], undefined, 'rest'), outDims], undefined, 'end');
  const noPads = int64Fill(emit, rank, 0, 'no_pads');
  const padBegin = emit.op('ScatterElements', [noPads, axes, begin], { axis: A.int(0) }, 'pads_begin');
  const padEnd = emit.op('ScatterElements', [noPads, axes, end], { axis: A.int(0) }, 'pads_end');
  const pads = emit.op('Concat', [padBegin, padEnd], { axis: A.int(0) }, 'pads');
  return emit.op('Pad', [dy, pads], { mode: A.string('constant') }, 'dx');
}

function scatterBack(ctx: RuleContext, dy: string, a: SliceArgs): string {
  const { emit } = ctx;
  const x = ctx.input(0);
  const shapeX = shapeOf(ctx, x);
  const numel = emit.op('Size', [x], undefined, 'numel');
  const positions = emit.op('Range', [int64Scalar(emit, 0, 'zero_s'), numel, int64Scalar(emit, 1, 'one_s')], undefined, 'positions');
  const grid = emit.op('Reshape', [positions, shapeX], { allowzero: A.int(1) }, 'position_grid');
  const args = [grid, a.starts, a.ends, a.axes ?? '', a.steps ?? ''];
  while (args[args.length - 1] === '') args.pop();
  const flat = emit.int64s([-1], 'flat');
  const picked = emit.reshape(emit.op('Slice', args, undefined, 'picked'), flat, 'picked_flat');
  const zeros = zerosOfShape(emit, emit.reshape(numel, emit.int64s([1], 'one'), 'numel_vec'));
  const scattered = emit.op('ScatterElements', [zeros, picked, emit.reshape(dy, flat, 'dy_flat')], { axis: A.int(0) }, 'dx_flat');
  return emit.op('Reshape', [scattered, shapeX], { allowzero: A.int(1) }, 'dx');
}

export const Slice: RuleEntry = {
  opType: 'Slice',
  minOpset: 10,
  nonDifferentiable: [1, 2, 3, 4],
  rule: (ctx) => {
    const grads: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return grads;
    const a = sliceArgs(ctx);
    grads[0] = a.unitSteps ? padBack(ctx, dy, a) : scatterBack(ctx, dy, a);
    return grads;
  },
};
