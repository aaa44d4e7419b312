// Graph analysis shared by head detection (src/patch/heads.ts) and inspect:
// which tensors carry gradient from a parameter. A head's splice point must be
// one of them (a shared shape or mask tensor is not where a GRL goes), and
// inspect only complains about missing gradient rules on such paths.
import { NodeProto } from '../onnx/proto';
import { Graph } from '../onnx/graph';
import { attrInt } from '../onnx/attrs';
import { dimsOf, isFloatType, numElements } from '../onnx/tensor';

/** Ops whose outputs never carry a gradient (shapes, comparisons, indices, random draws). */
const NON_DIFF_OUTPUT = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'EyeLike', 'NonZero', 'ArgMax', 'ArgMin',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli',
]);

/** Inputs that are shapes, axes, indices or conditions: no gradient flows into them. */
const NON_DIFF_INPUTS: Record<string, number[]> = {
  Reshape: [1], Expand: [1], Tile: [1], Unsqueeze: [1], Squeeze: [1], Split: [1], Trilu: [1],
  Gather: [1], GatherElements: [1], GatherND: [1], ScatterElements: [1], ScatterND: [1],
  Slice: [1, 2, 3, 4], Pad: [1, 3], Where: [0], TopK: [1], CumSum: [1], OneHot: [0, 1, 2],
  Resize: [1, 2, 3], Upsample: [1], Dropout: [1, 2],
  ReduceSum: [1], ReduceMean: [1], ReduceMax: [1], ReduceMin: [1], ReduceProd: [1], ReduceL1: [1],
  ReduceL2: [1], ReduceLogSum: [1], ReduceLogSumExp: [1], ReduceSumSquare: [1],
};

/** Whether input `i` of `node` can carry a gradient. */
export function isDifferentiableInput(node: NodeProto, i: number): boolean {
  if (node.domain && node.domain !== 'ai.onnx' && node.domain !== 'ai.grl-onnx') return true;
  return !(NON_DIFF_INPUTS[node.op_type ?? ''] ?? []).includes(i);
}

/** Whether `node`'s outputs can carry a gradient at all. */
export function hasDifferentiableOutputs(node: NodeProto): boolean {
  if (NON_DIFF_OUTPUT.has(node.op_type ?? '')) return false;
  // A Cast to an integer or bool type ends the gradient path (e.g. a mask made from scores).
  if (node.op_type === 'Cast') return isFloatType(attrInt(node, 'to', 1));
  return true;
}

/**
 * Tensors that depend on a trainable parameter through differentiable edges. Parameters are
 * float initializers with more than one element: scalars such as 1.0 in `(1 - mask) * -1e4`
 * or a LayerNorm epsilon are constants, and counting them would make every mask "data".
 */
export function differentiableTensors(graph: Graph): Set<string> {
  const diff = new Set<string>();
  for (const t of graph.initializers) {
    if (isFloatType(t.data_type ?? 0) && numElements(dimsOf(t)) > 1) diff.add(t.name ?? '');
  }
  for (const n of graph.nodes) {
    if (!hasDifferentiableOutputs(n)) continue;
    const fed = (n.input ?? []).some((name, i) => name && diff.has(name) && isDifferentiableInput(n, i));
    if (fed) for (const o of n.output ?? []) if (o) diff.add(o);
  }
  return diff;
}
