// Static shape inference must never claim a wrong shape: Slice with negative steps,
// checked against onnxruntime's actual output shapes.
import * as ort from 'onnxruntime-node';
import { inferShapes } from '../../src/onnx/shapes';
import { int64Tensor } from '../../src/onnx/tensor';
import { F, makeModel, session, valueInfo } from '../helpers/build';

const cases: [number, number, number][] = [
  [-100, -100, -1],
  [4, -100, -1],
  [100, 1, -2],
  [-1, -6, -1],
  [2, 2, -1],
  [0, 100, 2],
];

describe('shape inference for Slice', () => {
  it.each(cases)('start %d, end %d, step %d on a dim of 5 matches onnxruntime', async (start, end, step) => {
    const model = makeModel({
      nodes: [{ op_type: 'Slice', name: 's', input: ['x', 'starts', 'ends', 'axes', 'steps'], output: ['y'] }],
      inputs: [valueInfo('x', F, [5, 3])],
      outputs: [valueInfo('y', F)],
      initializers: [int64Tensor('starts', [1], [start]), int64Tensor('ends', [1], [end]), int64Tensor('axes', [1], [0]), int64Tensor('steps', [1], [step])],
    });
    const s = await session(model);
    const y = (await s.run({ x: new ort.Tensor('float32', new Float32Array(15), [5, 3]) })).y;
    const inferred = inferShapes(model.graph!).shape('y');
    expect(inferred).toEqual([...y.dims]);
  });
});
