// Finite-difference checks (static and symbolic shapes) of the reductions,
// Softmax/LogSoftmax and LayerNormalization, across their opset variants.
import { gradCheck, gradCheckBoth, CaseInput } from '../helpers/gradcheck';
import { A } from '../../src/onnx/attrs';
import { findRule } from '../../src/grad/rules';
import { tensorToInts } from '../../src/onnx/tensor';
import { runRule } from './rules-math-util';

const axesInput = (axes: number[]): CaseInput => ({ dims: [axes.length], type: 'int64', values: axes, constant: true });

describe('ReduceMean / ReduceSum gradients', () => {
  for (const op of ['ReduceMean', 'ReduceSum']) {
    const inputSince = op === 'ReduceMean' ? 18 : 13;
    // Before 13 ReduceSum's axes attribute is invalid in the opset-16 gradient graph, so
    // that variant is checked structurally below; ReduceMean 17 runs end to end.
    for (const opset of op === 'ReduceSum' ? [inputSince] : [inputSince - 1, inputSince]) {
      const form = opset < inputSince ? 'attribute' : 'input';
      for (const keepdims of [1, 0]) {
        for (const axes of [[1], [-1], [0, 2], [-3, -1]]) {
          it(`${op} opset ${opset} (axes ${form}) axes [${axes}] keepdims=${keepdims}`, async () => {
            const attrs = { keepdims: A.int(keepdims), ...(form === 'attribute' ? { axes: A.ints(axes) } : {}) };
            const inputs: CaseInput[] = [{ dims: [2, 3, 4] }, ...(form === 'input' ? [axesInput(axes)] : [])];
            await gradCheckBoth({ op, opset, attrs, inputs });
          });
        }
        it(`${op} opset ${opset} without axes reduces everything, keepdims=${keepdims}`, async () => {
          await gradCheckBoth({ op, opset, attrs: { keepdims: A.int(keepdims) }, inputs: [{ dims: [2, 3, 4] }] });
        });
      }
    }
    it(`${op} opset ${inputSince}: noop_with_empty_axes=1 with empty axes is the identity`, async () => {
      await gradCheckBoth({ op, opset: inputSince, attrs: { noop_with_empty_axes: A.int(1) }, inputs: [{ dims: [2, 3] }, axesInput([])] });
      const r = await gradCheck({ op: 'Identity', inputs: [{ dims: [2, 3] }] });
      const n = await gradCheck({ op, opset: inputSince, attrs: { noop_with_empty_axes: A.int(1) }, inputs: [{ dims: [2, 3] }, axesInput([])] });
      expect(Array.from(n.grads.get(0)!)).toEqual(Array.from(r.grads.get(0)!));
    });
    it(`${op} opset ${inputSince}: axes given at run time, keepdims=0`, async () => {
      await gradCheckBoth({ op, opset: inputSince, attrs: { keepdims: A.int(0) }, inputs: [{ dims: [2, 3, 4] }, { dims: [1], type: 'int64', values: [-2] }] });
    });
    it(`${op} declares its axes input non-differentiable`, () => {
      expect(findRule(op)!.nonDifferentiable).toEqual([1]);
    });
  }
  it('ReduceSum opset 11 reads the axes attribute (negative axes kept for Unsqueeze)', () => {
    const r = runRule('ReduceSum', { axes: A.ints([0, -1]), keepdims: A.int(0) }, ['x'], ['y'], { opset: 11, shapes: { x: [2, 3, 4] } });
    const unsq = r.nodes.find((n) => n.op_type === 'Unsqueeze')!;
    const axes = r.initializers.find((t) => t.name === unsq.input![1])!;
    expect(tensorToInts(axes)).toEqual([0, -1]);
    const expand = r.nodes.find((n) => n.output![0] === r.grads[0])!;
    expect(expand.op_type).toBe('Expand');
    expect(tensorToInts(r.initializers.find((t) => t.name === expand.input![1])!)).toEqual([2, 3, 4]);
  });
  it('exact: ReduceMean over 4 values spreads dY/4 to each', async () => {
    const r = await gradCheck({ op: 'ReduceMean', opset: 18, attrs: { keepdims: A.int(0) }, inputs: [{ dims: [2, 4] }, axesInput([1])] }, 'static');
    const s = await gradCheck({ op: 'ReduceSum', opset: 18, attrs: { keepdims: A.int(0) }, inputs: [{ dims: [2, 4] }, axesInput([1])] }, 'static');
    const dm = r.grads.get(0)!;
    const ds = s.grads.get(0)!; // same seed, same dY: the sum spreads dY itself
    for (let k = 0; k < 8; k++) {
      expect(dm[k]).toBeCloseTo(ds[k] / 4, 6);
      expect(ds[k]).toBe(ds[k < 4 ? 0 : 4]);
    }
  });
});

describe('Softmax / LogSoftmax gradients', () => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    for (const opset of [13, 17]) {
      for (const axis of [undefined, -1, 1, 0, -3]) {
        it(`${op} opset ${opset} axis ${axis ?? 'default (-1)'}`, async () => {
          await gradCheckBoth({ op, opset, attrs: axis === undefined ? undefined : { axis: A.int(axis) }, inputs: [{ dims: [2, 3, 4], scale: 2 }] });
        });
      }
    }
    it(`${op} before opset 13 (2-D coercion) is refused by minOpset`, () => {
      expect(findRule(op)!.minOpset).toBe(13);
    });
  }
  it('exact: Softmax gradient sums to 0 along the axis (softmax ignores a constant shift)', async () => {
    const r = await gradCheck({ op: 'Softmax', opset: 13, inputs: [{ dims: [2, 5] }] });
    const dx = r.grads.get(0)!;
    for (const row of [0, 1]) {
      const s = dx.slice(row * 5, row * 5 + 5).reduce((a, b) => a + b, 0);
      expect(Math.abs(s)).toBeLessThan(1e-6);
    }
  });
});

describe('LayerNormalization gradient', () => {
  const base = { op: 'LayerNormalization', opset: 17 };
  it('axis -1 with Scale and B (the transformer case)', async () => {
    await gradCheckBoth({ ...base, inputs: [{ dims: [2, 3, 8] }, { dims: [8] }, { dims: [8] }] });
  });
  it('axis 1 (positive: needs the rank), normalizing two axes, epsilon 1e-3', async () => {
    await gradCheckBoth({ ...base, attrs: { axis: A.int(1), epsilon: A.float(1e-3) }, inputs: [{ dims: [2, 3, 4] }, { dims: [3, 4] }, { dims: [3, 4] }] });
  });
  it('axis -2 with Scale and B broadcast over the normalized axes', async () => {
    await gradCheckBoth({ ...base, attrs: { axis: A.int(-2) }, inputs: [{ dims: [2, 3, 4] }, { dims: [4] }, { dims: [1, 4] }] });
  });
  it('without B', async () => {
    await gradCheckBoth({ ...base, inputs: [{ dims: [4, 6] }, { dims: [6] }] });
  });
  it('stash_type 1 given explicitly, frozen Scale', async () => {
    await gradCheckBoth({ ...base, attrs: { stash_type: A.int(1) }, inputs: [{ dims: [3, 5] }, { dims: [5], diff: false }, { dims: [5] }] });
  });
  it('Mean and InvStdDev outputs present but receiving no gradient', async () => {
    await gradCheckBoth({ ...base, numOutputs: 3, gradOutputs: [0], inputs: [{ dims: [2, 3, 6] }, { dims: [6] }, { dims: [6] }] });
  });
  it('Mean and InvStdDev outputs receiving gradients too', async () => {
    await gradCheckBoth({ ...base, numOutputs: 3, inputs: [{ dims: [2, 3, 6] }, { dims: [6] }, { dims: [6] }] });
  });
  it('only the Mean output receiving a gradient', async () => {
    await gradCheckBoth({ ...base, numOutputs: 2, gradOutputs: [1], inputs: [{ dims: [3, 6] }, { dims: [6], diff: false }] });
  });
  it('exact: one row, dY recovered from dB, dX and dScale computed by hand in float64', async () => {
    const x = [1, 2, 4];
    const scale = [0.5, 2, -1];
    const eps = 1e-5;
    const r = await gradCheck({ ...base, inputs: [{ dims: [1, 3], values: x }, { dims: [3], values: scale }, { dims: [3], values: [0, 0, 0] }] }, 'static');
    const dy = Array.from(r.grads.get(2)!); // one row: dB = dY
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const mu = mean(x);
    const invstd = 1 / Math.sqrt(mean(x.map((v) => (v - mu) ** 2)) + eps);
    const xhat = x.map((v) => (v - mu) * invstd);
    const g = dy.map((d, k) => d * scale[k]);
    const mg = mean(g);
    const mgx = mean(g.map((v, k) => v * xhat[k]));
    const dX = r.grads.get(0)!;
    const dScale = r.grads.get(1)!;
    for (let k = 0; k < 3; k++) {
      expect(dScale[k]).toBeCloseTo(dy[k] * xhat[k], 5);
      expect(dX[k]).toBeCloseTo(invstd * (g[k] - mg - xhat[k] * mgx), 5);
    }
  });
});
