// Gradient builder: the backward of ReduceSum and ReduceMean, shared because they
// differ only in the 1/count scale. The reduced axes come from the `axes` attribute
// before the opset where they became input 1 (ReduceSum 13, ReduceMean 18).
// dX = Expand(dY with the reduced axes restored, Shape(X)) [/ count].
import { nodeError, constDims } from './static-shape';
import type { RuleContext } from './types';

interface ReduceAxes {
  /** Constant axes (possibly negative), an axes tensor name, or null for all axes. */
  axes: number[] | string | null;
  /** noop_with_empty_axes with empty axes: the op is the identity. */
  identity: boolean;
}

function readAxes(ctx: RuleContext, axesInputSince: number): ReduceAxes {
  if (ctx.opset < axesInputSince) {
    const a = ctx.attrInts('axes');
    return { axes: a && a.length ? a : null, identity: false };
  }
  const noop = ctx.attrInt('noop_with_empty_axes', 0) !== 0;
  const name = ctx.input(1);
  if (!name) return { axes: null, identity: noop };
  const a = ctx.constInts(1);
  if (!a) return { axes: name, identity: false };
  return a.length ? { axes: a, identity: false } : { axes: null, identity: noop };
}

export function reduceGrad(ctx: RuleContext, mean: boolean, axesInputSince: number): (string | null)[] {
  const out: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return out;
  const { emit } = ctx;
  const x = ctx.input(0);
  const { axes, identity } = readAxes(ctx, axesInputSince);
  if (identity) {
    out[0] = dy;
    return out;
  }
  const keepdims = ctx.attrInt('keepdims', 1) !== 0;
  const xDims = ctx.shape(x);

  let g = dy;
  if (mean) {
    const count = staticCount(xDims, axes);
    if (count !== undefined) {
      g = emit.op('Mul', [g, emit.float(1 / count, 'inv_count')], undefined, 'dy_over_count');
    } else {
      // count = |X| / |Y| holds for every axes/keepdims combination.
      const ratio = emit.op('Div', [emit.op('Size', [x], undefined, 'size_x'), emit.op('Size', [dy], undefined, 'size_y')], undefined, 'count');
      g = emit.op('Div', [g, emit.op('CastLike', [ratio, dy], undefined, 'count_float')], undefined, 'dy_over_count');
    }
  }
  // Reducing everything leaves a scalar or all-ones shape, which Expand broadcasts as is.
  if (!keepdims && axes !== null) {
    if (typeof axes === 'string' && ctx.attrInt('noop_with_empty_axes', 0) !== 0) {
      throw nodeError(ctx, `axes '${axes}' are not constant and noop_with_empty_axes=1; the gradient cannot tell the identity case apart`);
    }
    // Negative axes count from the back of the unsqueezed result, which has X's rank: same meaning.
    g = typeof axes === 'string' ? emit.op('Unsqueeze', [g, axes], undefined, 'unsqueeze') : emit.unsqueeze(g, axes);
  }
  const known = constDims(xDims);
  const shape = known ? emit.int64s(known, 'x_shape') : emit.shape(x);
  out[0] = emit.declareShape(emit.op('Expand', [g, shape], undefined, 'dx'), xDims);
  return out;
}

function staticCount(xDims: ReturnType<RuleContext['shape']>, axes: ReduceAxes['axes']): number | undefined {
  if (!xDims || typeof axes === 'string') return undefined;
  const r = xDims.length;
  const picked = axes === null ? xDims : axes.map((a) => xDims[a < 0 ? a + r : a]);
  return picked.every((d) => typeof d === 'number') ? (picked as number[]).reduce((p, d) => p * d, 1) : undefined;
}
