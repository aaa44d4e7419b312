// Graph analysis shared by head detection (src/patch/heads.ts) and inspect:
// which tensors carry gradient from a parameter. A head's splice point must be
// one of them (a shared shape or mask tensor is not where a GRL goes), and
// inspect only complains about missing gradient rules on such paths. The rules
// themselves (which ops and inputs carry no gradient, what a parameter is) are
// the gradient builder's, so patch, inspect and training agree on every path.
import { Graph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { differentiablePath, parameterNames } from '../grad/backward';

export { hasDifferentiableOutputs, isDifferentiableInput, isParameter } from '../grad/backward';

/**
 * Tensors that depend on a parameter (a float initializer of rank >= 1) through
 * differentiable edges: the gradient builder's forward sweep from every parameter.
 */
export function differentiableTensors(graph: Graph): Set<string> {
  return differentiablePath(graph, parameterNames(graph), [], inferShapes(graph.proto)).downstream;
}
