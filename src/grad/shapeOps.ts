// Gradient builder: in-graph shape helpers shared by the shape and
// data-movement rules (Reshape, Concat, Slice, Gather, Tile, Pad, ...).
// Shapes come from Shape() of forward tensors so one training graph serves
// every batch and sequence length; a constant is used only when the static
// shape is fully numeric, i.e. exact. Emitted ops are valid from opset 16
// (Shape start/end needs 15, Reshape allowzero needs 14).
import { DataType } from '../onnx/proto';
import { A } from '../onnx/attrs';
import { makeTensor } from '../onnx/tensor';
import type { Emitter } from './emit';
import type { Dim, RuleContext } from './types';

function staticDims(ctx: RuleContext, x: string): number[] | undefined {
  const s: Dim[] | undefined = ctx.shape(x);
  return s && s.every((d): d is number => typeof d === 'number') ? s : undefined;
}

/**
 * Dims [start, end) of x's shape with Python slice semantics (negatives count from
 * the end, `end` undefined = to the end). Shape's `end` attribute cannot say
 * "to the end" with 0, so callers pass undefined rather than start+1 === 0.
 */
export function shapePart(ctx: RuleContext, x: string, start = 0, end?: number): string {
  const s = staticDims(ctx, x);
  if (s) return ctx.emit.int64s(s.slice(start, end), 'dims');
  if (start === 0 && end === undefined) return ctx.emit.shape(x);
  return ctx.emit.op('Shape', [x], { start: A.int(start), end: end === undefined ? undefined : A.int(end) }, 'dims');
}

export const shapeOf = (ctx: RuleContext, x: string): string => shapePart(ctx, x);

/** x's dim at `axis` as a 1-element vector. */
export function dimAt(ctx: RuleContext, x: string, axis: number): string {
  return shapePart(ctx, x, axis, axis + 1 === 0 ? undefined : axis + 1);
}

/** Dims before `axis`. */
export function dimsBefore(ctx: RuleContext, x: string, axis: number): string {
  return shapePart(ctx, x, 0, axis);
}

/** Dims after `axis` (empty for axis -1). */
export function dimsAfter(ctx: RuleContext, x: string, axis: number): string {
  if (axis === -1) return ctx.emit.int64s([], 'no_dims');
  return shapePart(ctx, x, axis + 1);
}

/** x's rank as a 1-element vector. */
export function rankTensor(ctx: RuleContext, x: string): string {
  const s = ctx.shape(x);
  if (s) return ctx.emit.int64s([s.length], 'rank');
  return ctx.emit.op('Shape', [ctx.emit.shape(x)], undefined, 'rank');
}

/** A constant int64 scalar (Range wants rank-0 bounds). */
export function int64Scalar(emit: Emitter, value: number, what = 'scalar'): string {
  const name = emit.name(what);
  emit.initializers.push(makeTensor(name, DataType.INT64, [], BigInt64Array.of(BigInt(value))));
  return name;
}

/** Float32 zeros of a shape (ConstantOfShape's default value is float 0). */
export function zerosOfShape(emit: Emitter, shape: string, what = 'zeros'): string {
  return emit.op('ConstantOfShape', [shape], undefined, what);
}

/** An int64 vector filled with `value`, shaped like the shape vector `shape`. */
export function int64Fill(emit: Emitter, shape: string, value: number, what: string): string {
  const t = makeTensor('value', DataType.INT64, [1], BigInt64Array.of(BigInt(value)));
  return emit.op('ConstantOfShape', [shape], { value: A.tensor(t) }, what);
}

/** Integer tensors (axes, indices, starts) may be int32; the arithmetic below is int64. */
export function asInt64(emit: Emitter, x: string, what: string): string {
  return emit.op('Cast', [x], { to: A.int(DataType.INT64) }, what);
}

/** Negative axes/indices counted from `size` (a tensor broadcastable against x). */
export function wrapNegative(emit: Emitter, x: string, size: string, what: string): string {
  const neg = emit.op('Less', [x, emit.int64s([0], 'zero')], undefined, `${what}_is_neg`);
  return emit.op('Where', [neg, emit.op('Add', [x, size], undefined, `${what}_plus_size`), x], undefined, what);
}

/** dX = Reshape(dY, Shape(X)): the gradient of every op that only reinterprets the layout. */
export function reshapeToInput(ctx: RuleContext): (string | null)[] {
  const grads: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return grads;
  // allowzero=1: a real 0 in X's shape must not mean "copy dY's dim".
  grads[0] = ctx.emit.op('Reshape', [dy, shapeOf(ctx, ctx.input(0))], { allowzero: A.int(1) }, 'dx');
  return grads;
}
