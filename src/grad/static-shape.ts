// Gradient builder: what rules may ask of static shape information (ranks for
// transposes and axes, constant dims for counts). Dims can be numbers,
// symbolic names or null, as shape inference on real exports gives them.
import { GraphError } from '../onnx/errors';
import { nodeLabel } from '../onnx/graph';
import type { Dim, RuleContext } from './types';

export function rankOf(ctx: RuleContext, name: string): number | undefined {
  return ctx.shape(name)?.length;
}

/** The rank of a tensor, or a one-line error naming the node when even that is unknown. */
export function requireRank(ctx: RuleContext, name: string): number {
  const r = rankOf(ctx, name);
  if (r === undefined) {
    throw new GraphError(`${ctx.node.op_type} node '${nodeLabel(ctx.node)}': the rank of '${name}' is unknown, so its gradient cannot be built (grl-onnx inspect names the op that blocks shape inference)`);
  }
  return r;
}

/** The dims as numbers when every one is a known constant. */
export function constDims(dims: Dim[] | undefined): number[] | undefined {
  return dims && dims.every((d) => typeof d === 'number') ? (dims as number[]) : undefined;
}

/** Two dims are statically equal: the same number or the same symbolic name (ONNX dim_param semantics). */
export function sameDim(a: Dim, b: Dim): boolean {
  return a !== null && a === b;
}

/** Declares a rule's new tensor to be shaped like the node's first output (for unbroadcast's static path). */
export function shapedLikeOutput(ctx: RuleContext, name: string): string {
  return ctx.emit.declareShape(name, ctx.shape(ctx.output(0)));
}

export function nodeError(ctx: RuleContext, message: string): GraphError {
  return new GraphError(`${ctx.node.op_type} node '${nodeLabel(ctx.node)}' (opset ${ctx.opset}): ${message}`);
}
