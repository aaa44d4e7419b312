// Head detection / inspect (src/patch/diffpaths.ts) and the gradient builder
// (src/grad/backward.ts) share one definition of which edges carry gradient and
// what a parameter is, so they agree on every differentiable path.
import { Graph } from '../../src/onnx/graph';
import { NodeProto } from '../../src/onnx/proto';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor';
import { differentiablePath, missingRules } from '../../src/grad/backward';
import { inferShapes } from '../../src/onnx/shapes';
import { findRule } from '../../src/grad/rules';
import { NON_DIFFERENTIABLE_OPS } from '../../src/grad/rules/nonDifferentiable';
import { differentiableTensors, hasDifferentiableOutputs, isDifferentiableInput, isParameter } from '../../src/patch/diffpaths';
import { GRL_DOMAIN, GRL_OP } from '../../src/patch/grl';
import { F, makeModel, valueInfo } from '../helpers/build';

const node = (op: string, input: string[], output: string, domain?: string): NodeProto => ({ name: output, op_type: op, input, output: [output], attribute: [], ...(domain ? { domain } : {}) });

describe('one source of truth for differentiable paths', () => {
  it('every no-gradient op is registered with all its inputs non-differentiable', () => {
    for (const op of ['OneHot', 'EyeLike', 'Constant', 'ConstantOfShape', 'RandomNormalLike', 'Shape', 'Equal']) {
      expect(NON_DIFFERENTIABLE_OPS.has(op)).toBe(true);
      expect(findRule(op)).toBeDefined();
      expect(hasDifferentiableOutputs(node(op, ['x'], 'y'))).toBe(false);
    }
    expect(findRule('OneHot')!.nonDifferentiable).toEqual([0, 1, 2]);
    // Same op name in a custom domain: not ours to judge.
    expect(hasDifferentiableOutputs(node('Shape', ['x'], 'y', 'com.example'))).toBe(true);
    expect(hasDifferentiableOutputs(node('Shape', ['x'], 'y', 'ai.onnx'))).toBe(false);
  });

  it('non-differentiable inputs are the rules\' own declarations', () => {
    expect(isDifferentiableInput(node('Reshape', ['x', 's'], 'y'), 0)).toBe(true);
    expect(isDifferentiableInput(node('Reshape', ['x', 's'], 'y'), 1)).toBe(false);
    expect(isDifferentiableInput(node(GRL_OP, ['x', 'l'], 'y', GRL_DOMAIN), 0)).toBe(true);
    expect(isDifferentiableInput(node(GRL_OP, ['x', 'l'], 'y', GRL_DOMAIN), 1)).toBe(false);
    expect(isDifferentiableInput(node('MyOp', ['x', 'i'], 'y', 'com.example'), 1)).toBe(true);
  });

  it('a parameter is a float initializer of rank >= 1, as for training', () => {
    expect(isParameter(float32Tensor('w', [1], [2]))).toBe(true);
    expect(isParameter(float32Tensor('eps', [], [1e-5]))).toBe(false);
    expect(isParameter(int64Tensor('axes', [1], [0]))).toBe(false);
  });

  it('differentiableTensors is the gradient builder\'s forward sweep from the parameters', () => {
    const model = makeModel({
      nodes: [
        node('Mul', ['x', 'W'], 'a'),
        node('Mul', ['a', 'scale'], 'b'),
        node('Add', ['x', 'eps'], 'c'),
        node('ArgMax', ['b'], 'idx'),
        node('OneHot', ['idx', 'depth', 'values'], 'oh'),
        node('Mul', ['oh', 'x'], 'z'),
      ],
      inputs: [valueInfo('x', F, ['batch', 3])],
      outputs: [valueInfo('z', F)],
      initializers: [float32Tensor('W', [3], [1, 2, 3]), float32Tensor('scale', [1], [2]), float32Tensor('eps', [], [1e-5]), int64Tensor('depth', [], [3]), float32Tensor('values', [2], [0, 1])],
    });
    const graph = new Graph(model.graph!);
    const diff = differentiableTensors(graph);
    const builder = differentiablePath(graph, ['W', 'scale', 'values'], [], inferShapes(graph.proto)).downstream;
    expect([...diff].sort()).toEqual([...builder].sort());
    expect(diff.has('b')).toBe(true);
    // A rank-0 constant is no parameter; OneHot's float `values` input carries no gradient.
    expect(diff.has('c')).toBe(false);
    expect(diff.has('oh')).toBe(false);
    expect(diff.has('z')).toBe(false);
    expect(missingRules(graph)).toEqual([]);
  });
});
