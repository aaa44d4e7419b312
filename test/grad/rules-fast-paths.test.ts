// Gradients rewritten for speed (scripts/bench-grad.js profiles): Pow with a constant
// exponent (the decomposed-LayerNorm Pow(x, 2) of every BERT export) and Erf with its
// constant folded into the exponent. Finite-difference checks for each special case,
// exact values, and the emitted graph for exponent 2 has no Pow left in it.
import { gradCheck, gradCheckBoth } from '../helpers/gradcheck';
import { Emitter } from '../../src/grad/emit';
import { makeRuleContext } from '../../src/grad/context';
import { findRule } from '../../src/grad/rules';
import { makeTensor } from '../../src/onnx/tensor';
import { DataType, NodeProto } from '../../src/onnx/proto';

describe('Pow with a constant exponent', () => {
  it.each([
    [2, false], [3, false], [1, false], [0.5, true], [-1, true], [2.5, true],
  ])('exponent %d: gradient matches finite differences (broadcast base)', async (b, positive) => {
    await gradCheckBoth({ op: 'Pow', inputs: [{ dims: [2, 3], positive }, { dims: [1], values: [b], constant: true }], eps: 1e-3 });
  });

  it('exponent 2: dX = 2 x dY exactly, for bases of any sign', async () => {
    const x = [1, -2, 0.5, 0];
    const r = await gradCheck({ op: 'Pow', inputs: [{ dims: [4], values: x }, { dims: [], values: [2], constant: true }] }, 'static');
    const dy = r.dys[0];
    expect(Array.from(r.grads.get(0)!)).toEqual(x.map((v, k) => Math.fround(Math.fround(dy[k] * v) * 2)));
  });

  it('a float Constant node exponent of 2 emits Mul only, no Pow', () => {
    const exponent: NodeProto = { name: 'two', op_type: 'Constant', input: [], output: ['b'], attribute: [{ name: 'value', type: 4, t: makeTensor('', DataType.FLOAT, [], Float32Array.of(2)) }] };
    const node: NodeProto = { name: 'sq', op_type: 'Pow', input: ['x', 'b'], output: ['y'], attribute: [] };
    let k = 0;
    const emit = new Emitter({ uniqueName: (base) => `${base}_${k++}` }, 'sq/grad', (n) => (n === 'x' || n === 'y' ? [2, 3] : n === 'b' ? [] : undefined));
    const ctx = makeRuleContext({
      node, opset: 17, gradOutputs: ['dy'], needsGrad: (i) => i === 0, emit,
      constants: { initializer: () => undefined, producer: (n) => (n === 'b' ? exponent : undefined) },
      shape: (n) => emit.shapeOf(n),
    });
    const grads = findRule('Pow')!.rule(ctx);
    expect(grads[1]).toBeNull();
    expect(emit.nodes.map((n) => n.op_type)).toEqual(['Mul', 'Mul']);
    expect(emit.nodes[0].input).toEqual(['dy', 'x']);
    expect(grads[0]).toBe(emit.nodes[1].output![0]);
  });
});

describe('Erf with the constant folded into the exponent', () => {
  it('d erf(x)/dx = 2/sqrt(pi) exp(-x^2) at 0, 1 and -2', async () => {
    const x = [0, 1, -2];
    const r = await gradCheck({ op: 'Erf', inputs: [{ dims: [3], values: x }] }, 'static');
    const dx = r.grads.get(0)!;
    x.forEach((v, k) => expect(dx[k] / r.dys[0][k]).toBeCloseTo((2 / Math.sqrt(Math.PI)) * Math.exp(-v * v), 6));
  });
});
