// The reverse-mode driver on small hand-built graphs: accumulation of several
// consumers, pruning, unsupported ops on and off the differentiable path.
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/onnx/graph';
import { float32Tensor } from '../../src/onnx/tensor';
import { NodeProto, TensorProto } from '../../src/onnx/proto';
import { differentiate, missingRules } from '../../src/grad/backward';
import { UnsupportedOpError } from '../../src/grad/types';
import { GrlError } from '../../src/onnx/errors';
import { F, makeModel, session, valueInfo } from '../helpers/build';

const W = [0.5, -1.5, 2];
const X = [1, 2, 3, 4, 5, 6];

function graphOf(nodes: NodeProto[], extraInputs: string[] = [], inits: TensorProto[] = [float32Tensor('W', [3], W)]) {
  const model = makeModel({
    nodes,
    inputs: [valueInfo('x', F, ['batch', 3]), valueInfo('dz', F, ['batch', 3]), ...extraInputs.map((n) => valueInfo(n, F, ['batch', 3]))],
    outputs: [valueInfo('z', F)],
    initializers: inits,
  });
  return { model, graph: new Graph(model.graph!) };
}

async function runGrad(model: ReturnType<typeof makeModel>, res: ReturnType<typeof differentiate>, outputs: string[], feeds: Record<string, ort.Tensor>) {
  const g = model.graph!;
  const full = makeModel({
    nodes: [...g.node!, ...res.nodes],
    inputs: g.input!,
    outputs: outputs.map((o) => valueInfo(o, F)),
    initializers: [...g.initializer!, ...res.initializers],
    opset: 17,
  });
  new Graph(full.graph!).validate();
  const s = await session(full);
  return s.run(feeds);
}

const feeds = () => ({
  x: new ort.Tensor('float32', Float32Array.from(X), [2, 3]),
  dz: new ort.Tensor('float32', Float32Array.from([1, -1, 0.5, 2, 0.25, -3]), [2, 3]),
});

describe('differentiate', () => {
  it('sums the gradients of a tensor with several consumers with one Sum node', async () => {
    // z = x·W + W: W has two consumers.
    const { model, graph } = graphOf([
      { name: 'mul', op_type: 'Mul', input: ['x', 'W'], output: ['y'] },
      { name: 'add', op_type: 'Add', input: ['y', 'W'], output: ['z'] },
    ]);
    const res = differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W'], opset: 17 });
    expect(res.grads.get('W')).toBe('W_grad');
    const sums = res.nodes.filter((n) => n.op_type === 'Sum');
    expect(sums).toHaveLength(1);
    expect(sums[0].output).toEqual(['W_grad']);
    expect(sums[0].input).toHaveLength(2);
    // Every emitted node is named under its forward node's label.
    for (const n of res.nodes.filter((n) => n.op_type !== 'Sum')) expect(n.name).toMatch(/^(mul|add)\/grad\//);
    const out = await runGrad(model, res, ['W_grad'], feeds());
    const dz = [1, -1, 0.5, 2, 0.25, -3];
    const expected = [0, 1, 2].map((j) => X[j] * dz[j] + X[3 + j] * dz[3 + j] + dz[j] + dz[3 + j]);
    const got = Array.from(out.W_grad.data as Float32Array);
    got.forEach((v, j) => expect(v).toBeCloseTo(expected[j], 5));
  });

  it('prunes a branch that does not reach a seed, and ignores tensors not downstream of wrt', async () => {
    // z = x·W; a second branch u = Exp(W)·V never reaches z; `x` is no parameter.
    const { graph } = graphOf(
      [
        { name: 'mul', op_type: 'Mul', input: ['x', 'W'], output: ['z'] },
        { name: 'side_exp', op_type: 'Exp', input: ['W'], output: ['e'] },
        { name: 'side_mul', op_type: 'Mul', input: ['e', 'V'], output: ['u'] },
      ],
      [],
      [float32Tensor('W', [3], W), float32Tensor('V', [3], [1, 1, 1])],
    );
    const res = differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W', 'V'], opset: 17 });
    expect([...res.grads.keys()]).toEqual(['W']);
    for (const n of res.nodes) expect(n.name).not.toMatch(/side/);
    for (const n of res.nodes) expect(n.input).not.toContain('e');
    // No gradient is built for x (not downstream of a parameter).
    expect(res.nodes.some((n) => n.output?.some((o) => o.startsWith('x_grad')))).toBe(false);
  });

  it('needs no rule for ops off the differentiable path (Hardmax on an input, an integer shape chain)', async () => {
    // z = Reshape(Hardmax(x)·W, Shape(x)): Hardmax has no rule but only sees the input x.
    const { model, graph } = graphOf([
      { name: 'hardmax', op_type: 'Hardmax', input: ['x'], output: ['h'] },
      { name: 'mul', op_type: 'Mul', input: ['h', 'W'], output: ['y'] },
      { name: 'shape', op_type: 'Shape', input: ['y'], output: ['s'] },
      { name: 'cast', op_type: 'Cast', input: ['y'], output: ['yi'], attribute: [{ name: 'to', type: 2, i: 7 }] },
      { name: 'reshape', op_type: 'Reshape', input: ['y', 's'], output: ['z'] },
    ]);
    const res = differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W'], opset: 17 });
    expect(res.grads.get('W')).toBe('W_grad');
    for (const n of res.nodes) expect(n.name).not.toMatch(/^(hardmax|shape|cast)\//);
    const out = await runGrad(model, res, ['W_grad'], feeds());
    // Hardmax of each row of x = [1,2,3],[4,5,6] is [0,0,1]: only W[2] sees a gradient.
    expect(Array.from(out.W_grad.data as Float32Array)).toEqual([0, 0, 0.5 - 3]);
    expect(missingRules(graph)).toEqual([]);
  });

  it('throws UnsupportedOpError naming op, node and opset for an op without a rule on the path', () => {
    const { graph } = graphOf([
      { name: 'mul', op_type: 'Mul', input: ['x', 'W'], output: ['y'] },
      { name: 'my_hardmax', op_type: 'Hardmax', input: ['y'], output: ['z'] },
    ]);
    const call = () => differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W'], opset: 17 });
    expect(call).toThrow(UnsupportedOpError);
    // A GrlError, so the CLI prints one line (not "unexpected error" and a --debug hint).
    expect(call).toThrow(GrlError);
    expect(call).toThrow("no gradient rule for op Hardmax (node 'my_hardmax', opset 17); `grl-onnx inspect` lists the ops on a gradient path that have none");
    expect(missingRules(graph)).toEqual([{ op: 'Hardmax', domain: '', nodes: ['my_hardmax'] }]);
  });

  it('gives no gradient to a parameter that only reaches the seed through an integer cast', () => {
    const { graph } = graphOf([
      { name: 'cast', op_type: 'Cast', input: ['W'], output: ['wi'], attribute: [{ name: 'to', type: 2, i: 7 }] },
      { name: 'back', op_type: 'Cast', input: ['wi'], output: ['wf'], attribute: [{ name: 'to', type: 2, i: 1 }] },
      { name: 'mul', op_type: 'Mul', input: ['x', 'wf'], output: ['z'] },
    ]);
    const res = differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W'], opset: 17 });
    expect(res.grads.size).toBe(0);
    expect(res.nodes).toEqual([]);
  });

  it('visits a node once per use: Mul(x, x) gets both contributions', async () => {
    const { model, graph } = graphOf([
      { name: 'sq', op_type: 'Mul', input: ['W', 'W'], output: ['w2'] },
      { name: 'mul', op_type: 'Mul', input: ['x', 'w2'], output: ['z'] },
    ]);
    const res = differentiate(graph, { seeds: new Map([['z', 'dz']]), wrt: ['W'], opset: 17 });
    const out = await runGrad(model, res, ['W_grad'], feeds());
    const dz = [1, -1, 0.5, 2, 0.25, -3];
    const expected = [0, 1, 2].map((j) => 2 * W[j] * (X[j] * dz[j] + X[3 + j] * dz[3 + j]));
    Array.from(out.W_grad.data as Float32Array).forEach((v, j) => expect(v).toBeCloseTo(expected[j], 4));
  });
});
