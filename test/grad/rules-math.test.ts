// Finite-difference checks (static and symbolic shapes) of the elementwise and
// math gradient rules, plus hand-computed cases with exact expectations.
import { gradCheck, gradCheckBoth } from '../helpers/gradcheck';
import { A } from '../../src/onnx/attrs';

describe('binary elementwise gradients with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [[2, 3], [2, 3]],
    [[2, 3, 4], [4]],
    [[2, 1, 4], [3, 1]],
    [[3], [2, 1, 3]],
    [[2, 3], []],
  ];
  for (const op of ['Sub', 'Mul']) {
    for (const [a, b] of shapes) {
      it(`${op} [${a}] with [${b}]`, async () => {
        await gradCheckBoth({ op, inputs: [{ dims: a }, { dims: b }] });
      });
    }
  }
  for (const [a, b] of shapes) {
    it(`Div [${a}] / [${b}] (divisor away from 0)`, async () => {
      // Curvature of 1/b near 0.1 needs a smaller finite-difference step.
      await gradCheckBoth({ op: 'Div', inputs: [{ dims: a }, { dims: b, positive: true }], eps: 1e-3 });
    });
  }
  it('Pow: gradient for base and exponent, broadcast exponent', async () => {
    await gradCheckBoth({ op: 'Pow', inputs: [{ dims: [2, 3], positive: true }, { dims: [3] }] });
  });
  it('Pow: base broadcast against a full exponent', async () => {
    await gradCheckBoth({ op: 'Pow', inputs: [{ dims: [1, 3], positive: true }, { dims: [2, 3], scale: 0.5 }] });
  });
  it('Pow: constant scalar exponent 2 (the decomposed-LayerNorm pattern), base of any sign', async () => {
    await gradCheckBoth({ op: 'Pow', inputs: [{ dims: [2, 3] }, { dims: [], values: [2], constant: true }] });
  });
  it('Pow: constant int64 exponent', async () => {
    const r = await gradCheck({ op: 'Pow', opset: 15, inputs: [{ dims: [3], values: [1, -2, 0.5] }, { dims: [], type: 'int64', values: [3], constant: true }] });
    expect(r.grads.size).toBe(1);
  });
  it('Sum: three inputs with broadcasting', async () => {
    await gradCheckBoth({ op: 'Sum', inputs: [{ dims: [2, 3, 4] }, { dims: [4] }, { dims: [3, 1] }] });
  });
  it('Sum: one input', async () => {
    await gradCheckBoth({ op: 'Sum', inputs: [{ dims: [2, 3] }] });
  });
  it('Where: X and Y gradients, broadcast condition and operands', async () => {
    await gradCheckBoth({
      op: 'Where',
      inputs: [{ dims: [2, 1, 4], type: 'bool', values: [1, 0, 1, 1, 0, 0, 1, 0] }, { dims: [2, 3, 4] }, { dims: [4] }],
    });
  });
  it('Where: scalar Y (the attention-mask fill pattern)', async () => {
    await gradCheckBoth({
      op: 'Where',
      inputs: [{ dims: [2, 3], type: 'bool', values: [1, 0, 1, 0, 1, 1] }, { dims: [2, 3] }, { dims: [] }],
    });
  });
});

describe('hand-computed broadcasting gradients', () => {
  it("Mul: the gradient wrt a broadcast scalar is sum(dY * X)", async () => {
    const x = [1, 2, 3, 4, 5, 6];
    const r = await gradCheck({ op: 'Mul', inputs: [{ dims: [2, 3], values: x }, { dims: [], values: [0.5] }] });
    const dx = r.grads.get(0)!; // = dY * 0.5, so dY = 2 dx
    const ds = r.grads.get(1)!;
    expect(ds.length).toBe(1);
    const expected = x.reduce((s, xi, k) => s + 2 * dx[k] * xi, 0);
    expect(ds[0]).toBeCloseTo(expected, 5);
  });
  it('Sub: the broadcast subtrahend gets minus the column sums of dY', async () => {
    const r = await gradCheck({ op: 'Sub', inputs: [{ dims: [2, 2], values: [1, 2, 3, 4] }, { dims: [2], values: [0, 0] }] });
    const dA = r.grads.get(0)!; // = dY
    const dB = r.grads.get(1)!;
    expect(dB[0]).toBeCloseTo(-(dA[0] + dA[2]), 6);
    expect(dB[1]).toBeCloseTo(-(dA[1] + dA[3]), 6);
  });
  it('Div: d(a/b)/db = -a/b^2 * dY with exact values', async () => {
    const r = await gradCheck({ op: 'Div', inputs: [{ dims: [2], values: [3, -4] }, { dims: [2], values: [2, 0.5] }] }, 'static');
    const dA = r.grads.get(0)!; // = dY / b
    const dY = [dA[0] * 2, dA[1] * 0.5];
    const dB = r.grads.get(1)!;
    expect(dB[0]).toBeCloseTo((-3 / 4) * dY[0], 5);
    expect(dB[1]).toBeCloseTo((4 / 0.25) * dY[1], 4);
  });
  it('Pow: d(x^3)/dx = 3x^2 * dY and d(2^y)/dy = 2^y ln2 * dY', async () => {
    const r = await gradCheck({ op: 'Pow', inputs: [{ dims: [2], values: [2, 1.5] }, { dims: [2], values: [3, 2] }] }, 'static');
    const dA = r.grads.get(0)!;
    const dB = r.grads.get(1)!;
    // dA = dY * b * a^(b-1), dB = dY * a^b * ln a: eliminate dY.
    expect(dB[0] / dA[0]).toBeCloseTo((8 * Math.log(2)) / 12, 5);
    expect(dB[1] / dA[1]).toBeCloseTo((2.25 * Math.log(1.5)) / 3, 5);
  });
  it('Where: the gradient goes to X where the condition holds and to Y elsewhere', async () => {
    const r = await gradCheck({ op: 'Where', inputs: [{ dims: [3], type: 'bool', values: [1, 0, 1] }, { dims: [3] }, { dims: [3] }] });
    const dX = r.grads.get(1)!;
    const dY = r.grads.get(2)!;
    expect(dX[1]).toBe(0);
    expect(dY[0]).toBe(0);
    expect(dY[2]).toBe(0);
    expect(dX[0]).not.toBe(0);
    expect(dY[1]).not.toBe(0);
  });
  it('Relu: zero gradient exactly where X <= 0, dY elsewhere', async () => {
    // (Finite differences cannot straddle the kink, so X = 0 itself is left out.)
    const r = await gradCheck({ op: 'Relu', inputs: [{ dims: [4], values: [-1, -0.3, 0.5, 2] }], eps: 1e-3 });
    const dx = r.grads.get(0)!;
    expect(dx[0]).toBe(0);
    expect(dx[1]).toBe(0);
    expect(dx[2]).not.toBe(0);
    expect(dx[3]).not.toBe(0);
  });
});

describe('unary gradients', () => {
  // Sqrt/Reciprocal/Log are steep near 0.1, hence the smaller step there.
  const cases: { op: string; positive?: boolean; opset?: number; attrs?: Record<string, ReturnType<typeof A.int>>; eps?: number }[] = [
    { op: 'Sqrt', positive: true, eps: 1e-3 },
    { op: 'Reciprocal', positive: true, eps: 1e-3 },
    { op: 'Neg' },
    { op: 'Exp' },
    { op: 'Log', positive: true, eps: 1e-3 },
    { op: 'Tanh' },
    { op: 'Sin' },
    { op: 'Cos' },
    { op: 'Erf' },
    { op: 'Sigmoid' },
    { op: 'Relu' },
    { op: 'Identity' },
    { op: 'Gelu', opset: 20 },
    { op: 'Gelu', opset: 20, attrs: { approximate: A.string('none') } },
    { op: 'Gelu', opset: 20, attrs: { approximate: A.string('tanh') } },
  ];
  for (const c of cases) {
    it(`${c.op}${c.attrs ? ' ' + JSON.stringify(c.attrs) : ''}`, async () => {
      await gradCheckBoth({ op: c.op, opset: c.opset, attrs: c.attrs, eps: c.eps, inputs: [{ dims: [2, 3, 4], positive: c.positive, scale: 1.5 }] });
    });
  }
  it('Gelu exact derivative at 0 is 0.5 and at 1 is Phi(1) + phi(1)', async () => {
    const r = await gradCheck({ op: 'Gelu', opset: 20, inputs: [{ dims: [2], values: [0, 1] }] });
    const dx = r.grads.get(0)!;
    const r2 = await gradCheck({ op: 'Identity', inputs: [{ dims: [2], values: [0, 1] }] });
    const dy = r2.grads.get(0)!; // same seed, so the same dY
    const phi1 = Math.exp(-0.5) / Math.sqrt(2 * Math.PI);
    const Phi1 = 0.8413447460685429;
    expect(dx[0]).toBeCloseTo(0.5 * dy[0], 6);
    expect(dx[1]).toBeCloseTo((Phi1 + phi1) * dy[1], 5);
  });
  it('Sin and Cos: dY·cos(X) and −dY·sin(X) exactly at 0 and π/2', async () => {
    const values = [0, Math.PI / 2];
    const dy = (await gradCheck({ op: 'Identity', inputs: [{ dims: [2], values }] })).grads.get(0)!;
    const dsin = (await gradCheck({ op: 'Sin', inputs: [{ dims: [2], values }] })).grads.get(0)!;
    const dcos = (await gradCheck({ op: 'Cos', inputs: [{ dims: [2], values }] })).grads.get(0)!;
    expect(dsin[0]).toBeCloseTo(dy[0], 6);
    expect(dsin[1]).toBeCloseTo(0, 6);
    expect(dcos[0]).toBeCloseTo(0, 6);
    expect(dcos[1]).toBeCloseTo(-dy[1], 6);
  });
  it('Gelu before opset 20 is refused by minOpset', async () => {
    const { findRule } = await import('../../src/grad/rules');
    expect(findRule('Gelu')!.minOpset).toBe(20);
  });
});

describe('Cast, Dropout', () => {
  it('Cast float -> double: the double gradient is cast back to float', async () => {
    // The harness only handles float outputs, so this case runs a hand-built graph.
    const { castBackToFloat } = await import('./rules-math-util');
    const dy = [0.25, -1.5, 1e-3, 3];
    const g = await castBackToFloat(dy);
    expect(g.type).toBe('float32');
    expect(Array.from(g.data as Float32Array)).toEqual(Array.from(Float32Array.from(dy)));
  });
  it('Cast float -> float is the identity for the gradient', async () => {
    const r = await gradCheck({ op: 'Cast', attrs: { to: A.int(1) }, inputs: [{ dims: [3] }] });
    const id = await gradCheck({ op: 'Identity', inputs: [{ dims: [3] }] });
    expect(Array.from(r.grads.get(0)!)).toEqual(Array.from(id.grads.get(0)!));
  });
  it('Cast float -> int64 gives no gradient', async () => {
    const { ruleOutput } = await import('./rules-math-util');
    expect(ruleOutput('Cast', { to: A.int(7) }, ['x'], ['y'])).toEqual([null]);
  });
  it('Dropout in inference mode: identity for data, with and without ratio/training_mode', async () => {
    await gradCheckBoth({ op: 'Dropout', opset: 13, inputs: [{ dims: [2, 3] }] });
    await gradCheckBoth({ op: 'Dropout', opset: 13, inputs: [{ dims: [2, 3] }, { dims: [], values: [0.3], constant: true }, { dims: [], type: 'bool', values: [0], constant: true }] });
  });
  it('Dropout with a constant-true training_mode is refused with a clear error', async () => {
    await expect(gradCheck({ op: 'Dropout', opset: 13, inputs: [{ dims: [2, 3] }, { dims: [], values: [0.3], constant: true }, { dims: [], type: 'bool', values: [1], constant: true }] }))
      .rejects.toThrow(/Dropout node 'Dropout_node' \(opset 13\): training_mode is true/);
  });
  it('Dropout with a run-time training_mode is refused', async () => {
    const { ruleOutput } = await import('./rules-math-util');
    expect(() => ruleOutput('Dropout', {}, ['x', 'r', 'mode'], ['y'])).toThrow(/training_mode 'mode' is not a constant/);
  });
});
