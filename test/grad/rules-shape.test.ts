// Finite-difference checks (static and symbolic shapes) of the shape and
// data-movement gradient rules, plus small hand-computed cases with exact values.
import { A, makeAttrs } from '../../src/onnx/attrs';
import { Emitter } from '../../src/grad/emit';
import { makeRuleContext } from '../../src/grad/context';
import { GrlError } from '../../src/onnx/errors';
import { findRule } from '../../src/grad/rules';
import { CaseInput, GradCase, GradCheckResult, gradCheck, gradCheckBoth } from '../helpers/gradcheck';

const f = (...dims: number[]): CaseInput => ({ dims });
/** An int64 initializer (constant axes, shapes, indices). */
const ci = (values: number[], dims = [values.length]): CaseInput => ({ dims, type: 'int64', constant: true, values });
/** An int64 graph input: the rule cannot read its values. */
const di = (values: number[], dims = [values.length]): CaseInput => ({ dims, type: 'int64', values });
const INT64_MAX = 2 ** 63; // saturates to 9223372036854775807 in the harness
const INT64_MIN = -(2 ** 63);

/** Run a case with static and symbolic shapes and apply exact expectations to both. */
async function bothExact(c: GradCase, check: (r: GradCheckResult) => void): Promise<void> {
  for (const mode of ['static', 'dynamic'] as const) check(await gradCheck(c, mode));
}

describe('Transpose gradient', () => {
  it('inverts a 4-D permutation', async () => {
    await gradCheckBoth({ op: 'Transpose', inputs: [f(2, 3, 4, 5)], attrs: { perm: A.ints([2, 0, 3, 1]) } });
  });
  it('reverses the axes when perm is absent', async () => {
    await gradCheckBoth({ op: 'Transpose', inputs: [f(2, 3, 4)] });
  });
  it('is dY transposed back (hand-checked)', async () => {
    await bothExact({ op: 'Transpose', inputs: [f(2, 3)], attrs: { perm: A.ints([1, 0]) } }, (r) => {
      const dx = r.grads.get(0)!;
      const dy = r.dys[0]; // [3, 2]
      for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(dx[i * 3 + j]).toBe(dy[j * 2 + i]);
    });
  });
});

describe('Reshape / Flatten / Squeeze / Unsqueeze gradients', () => {
  it('Reshape with -1 and 0 in the target shape', async () => {
    await gradCheckBoth({ op: 'Reshape', inputs: [f(2, 3, 4), ci([0, -1])] });
  });
  it('Reshape with a dynamic shape input', async () => {
    await gradCheckBoth({ op: 'Reshape', inputs: [f(2, 6), di([3, 2, 2])] });
  });
  it('Flatten with a negative axis', async () => {
    await gradCheckBoth({ op: 'Flatten', inputs: [f(2, 3, 4)], attrs: { axis: A.int(-1) } });
  });
  it('Squeeze with negative axes as input (opset 13)', async () => {
    await gradCheckBoth({ op: 'Squeeze', inputs: [f(2, 1, 3, 1), ci([-1, 1])], opset: 13 });
  });
  it('Squeeze without axes (opset 21)', async () => {
    await gradCheckBoth({ op: 'Squeeze', inputs: [f(1, 3, 1)], opset: 21 });
  });
  it('Unsqueeze with negative axes as input (opset 13)', async () => {
    await gradCheckBoth({ op: 'Unsqueeze', inputs: [f(2, 3), ci([-1, 0])], opset: 13 });
  });
  it('Unsqueeze at opset 21', async () => {
    await gradCheckBoth({ op: 'Unsqueeze', inputs: [f(3), ci([1])], opset: 21 });
  });
});

describe('Concat gradient', () => {
  it('three inputs along a negative axis', async () => {
    await gradCheckBoth({ op: 'Concat', inputs: [f(2, 3, 1), f(2, 3, 4), f(2, 3, 2)], attrs: { axis: A.int(-1) } });
  });
  it('axis 0, only the second input differentiated', async () => {
    await gradCheckBoth({ op: 'Concat', inputs: [{ dims: [1, 3], diff: false }, f(2, 3)], attrs: { axis: A.int(0) } });
  });
  it('hands each input its own slice of dY (hand-checked)', async () => {
    await bothExact({ op: 'Concat', inputs: [f(2, 1), f(2, 2)], attrs: { axis: A.int(-1) } }, (r) => {
      const dy = r.dys[0]; // [2, 3]
      expect(Array.from(r.grads.get(0)!)).toEqual([dy[0], dy[3]]);
      expect(Array.from(r.grads.get(1)!)).toEqual([dy[1], dy[2], dy[4], dy[5]]);
    });
  });
});

describe('Split gradient', () => {
  it('split sizes as input (opset 13), negative axis', async () => {
    await gradCheckBoth({ op: 'Split', inputs: [f(2, 7), ci([2, 4, 1])], attrs: { axis: A.int(-1) }, numOutputs: 3, opset: 13 });
  });
  it('equal split without sizes (opset 13)', async () => {
    await gradCheckBoth({ op: 'Split', inputs: [f(6, 2)], numOutputs: 3, opset: 13 });
  });
  it('num_outputs with an uneven last chunk (opset 18)', async () => {
    await gradCheckBoth({ op: 'Split', inputs: [f(2, 7)], attrs: { axis: A.int(1), num_outputs: A.int(3) }, numOutputs: 3, opset: 18 });
  });
  it('zeros only for the outputs without a gradient (hand-checked, uneven, opset 18)', async () => {
    // 7 split in 3 -> chunks of 3, 3, 1; output 1 gets no gradient.
    await bothExact({ op: 'Split', inputs: [f(7)], attrs: { num_outputs: A.int(3) }, numOutputs: 3, opset: 18, gradOutputs: [0, 2] }, (r) => {
      const [dy0, , dy2] = r.dys;
      expect(Array.from(r.grads.get(0)!)).toEqual([dy0[0], dy0[1], dy0[2], 0, 0, 0, dy2[0]]);
    });
  });
});

describe('Slice gradient', () => {
  it('unit steps with negative starts and an INT64_MAX end', async () => {
    await gradCheckBoth({ op: 'Slice', inputs: [f(3, 5, 4), ci([1, -3]), ci([INT64_MAX, -1]), ci([0, -1]), ci([1, 1])] });
  });
  it('unit steps, no axes or steps inputs, clamped ends', async () => {
    await gradCheckBoth({ op: 'Slice', inputs: [f(4, 5), ci([-10, 2]), ci([2, 100])] });
  });
  it('unit steps with dynamic starts/ends/axes', async () => {
    await gradCheckBoth({ op: 'Slice', inputs: [f(4, 6), di([-4, 1]), di([-1, 100]), di([1, 0])] });
  });
  it('negative steps with clamped ends', async () => {
    await gradCheckBoth({ op: 'Slice', inputs: [f(4, 7), ci([100, -2]), ci([INT64_MIN, 0]), ci([1, 0]), ci([-2, -1])] });
  });
  it('steps > 1 given as a dynamic input', async () => {
    await gradCheckBoth({ op: 'Slice', inputs: [f(5, 6), di([1]), di([6]), di([-1]), di([2])] });
  });
  it('an empty slice gives an all-zero gradient of the input shape', async () => {
    // The harness checks the gradient's shape first, then refuses an all-zero result.
    await expect(gradCheck({ op: 'Slice', inputs: [f(3, 2), ci([2]), ci([1]), ci([0]), ci([1])] }, 'dynamic')).rejects.toThrow(/every gradient is exactly zero/);
    await expect(gradCheck({ op: 'Slice', inputs: [f(3, 2), ci([2]), ci([1]), ci([0]), ci([-1])] }, 'static')).resolves.toBeDefined();
  });
  it('puts dY back at the read positions (hand-checked, steps 1 and -2)', async () => {
    await bothExact({ op: 'Slice', inputs: [f(6), ci([-4]), ci([INT64_MAX]), ci([0]), ci([1])] }, (r) => {
      const dy = r.dys[0];
      expect(Array.from(r.grads.get(0)!)).toEqual([0, 0, dy[0], dy[1], dy[2], dy[3]]);
    });
    await bothExact({ op: 'Slice', inputs: [f(6), ci([-1]), ci([INT64_MIN]), ci([0]), ci([-2])] }, (r) => {
      const dy = r.dys[0]; // reads 5, 3, 1
      expect(Array.from(r.grads.get(0)!)).toEqual([0, dy[2], 0, dy[1], 0, dy[0]]);
    });
  });
});

describe('Gather gradient', () => {
  it('embedding lookup (axis 0) with repeated and negative multi-dim indices', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(5, 3), ci([1, 4, -1, 1, 0, 1], [2, 3])] });
  });
  it('axis 1 with repeated indices', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(2, 4, 3), ci([3, 0, 3, -4], [4])], attrs: { axis: A.int(1) } });
  });
  it('negative axis with 2-D dynamic indices', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(2, 3, 4), di([0, 3, -1, 0], [2, 2])], attrs: { axis: A.int(-1) } });
  });
  it('scalar index on axis 0 and on axis 1', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(4, 3), ci([-2], [])] });
    await gradCheckBoth({ op: 'Gather', inputs: [f(2, 4, 3), ci([2], [])], attrs: { axis: A.int(1) } });
  });
  it('1-D data on axis 0 and axis -1', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(5), ci([4, 0, 4], [3])] });
    await gradCheckBoth({ op: 'Gather', inputs: [f(5), di([-1, 2, 2], [3])], attrs: { axis: A.int(-1) } });
  });
  it('works for an opset 14 model (gradient graph at opset 16)', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(6, 2), di([5, 5, 0])], opset: 14 });
  });
  it('sums the rows of a repeated token id (hand-checked)', async () => {
    // ids [1, 3, 1, -1] into a 4 x 2 table: row 1 twice, row 3 twice (3 and -1).
    await bothExact({ op: 'Gather', inputs: [f(4, 2), ci([1, 3, 1, -1])] }, (r) => {
      const dy = r.dys[0];
      const dx = r.grads.get(0)!;
      expect(Array.from(dx.subarray(0, 2))).toEqual([0, 0]);
      expect(dx[2]).toBeCloseTo(dy[0] + dy[4], 6);
      expect(dx[3]).toBeCloseTo(dy[1] + dy[5], 6);
      expect(Array.from(dx.subarray(4, 6))).toEqual([0, 0]);
      expect(dx[6]).toBeCloseTo(dy[2] + dy[6], 6);
      expect(dx[7]).toBeCloseTo(dy[3] + dy[7], 6);
    });
  });
  it('accumulates along axis 1 (hand-checked)', async () => {
    await bothExact({ op: 'Gather', inputs: [f(2, 3), ci([2, 2, 0])], attrs: { axis: A.int(1) } }, (r) => {
      const dy = r.dys[0]; // [2, 3]
      const dx = r.grads.get(0)!;
      expect(dx[0]).toBe(dy[2]);
      expect(dx[1]).toBe(0);
      expect(dx[2]).toBeCloseTo(dy[0] + dy[1], 6);
      expect(dx[3]).toBe(dy[5]);
      expect(dx[4]).toBe(0);
      expect(dx[5]).toBeCloseTo(dy[3] + dy[4], 6);
    });
  });
  // Static small tables take the one-hot Gemm path, symbolic ones ScatterElements:
  // gradCheckBoth runs each case through both.
  it('rank-3 table on axis 0 with repeated, negative and dynamic 2-D indices', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(3, 2, 4), ci([2, -1, 0, 2], [2, 2])] });
    await gradCheckBoth({ op: 'Gather', inputs: [f(3, 2, 4), di([-3, 1, 1], [3, 1])] });
    await gradCheckBoth({ op: 'Gather', inputs: [f(3, 2, 4), di([-1], [])] });
  });
  it('rank-1 table with a scalar index', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(5), di([-4], [])] });
  });
  it('a 65-row table (just past the one-hot limit) with repeated and negative indices', async () => {
    await gradCheckBoth({ op: 'Gather', inputs: [f(65, 3), ci([64, -1, 0, 7, 7, -65], [2, 3])] });
  });
  it('sums repeated rows of a rank-3 table exactly (hand-checked)', async () => {
    // ids [[2, -1], [0, 2]] into a 3 x 1 x 2 table: row 2 three times, row 0 once, row 1 never.
    await bothExact({ op: 'Gather', inputs: [f(3, 1, 2), ci([2, -1, 0, 2], [2, 2])] }, (r) => {
      const dy = r.dys[0]; // [2, 2, 1, 2]
      const dx = r.grads.get(0)!;
      expect(dx[0]).toBe(dy[4]);
      expect(dx[1]).toBe(dy[5]);
      expect(Array.from(dx.subarray(2, 4))).toEqual([0, 0]);
      expect(dx[4]).toBeCloseTo(dy[0] + dy[2] + dy[6], 6);
      expect(dx[5]).toBeCloseTo(dy[1] + dy[3] + dy[7], 6);
    });
  });
  it('uses the one-hot product for small static tables on axis 0 and the scatter otherwise', () => {
    const gemm = ['Gemm'];
    const scatter = ['ScatterElements'];
    expect(gatherGradOps([2, 256], 0)).toEqual(gemm);
    expect(gatherGradOps([64, 8], 0)).toEqual(gemm);
    expect(gatherGradOps([5], -1)).toEqual(gemm);
    expect(gatherGradOps([3, 2, 4], -3)).toEqual(gemm);
    expect(gatherGradOps([65, 8], 0)).toEqual(scatter);
    expect(gatherGradOps([512, 256], 0)).toEqual(scatter);
    expect(gatherGradOps([2, 3], 1)).toEqual(scatter);
    expect(gatherGradOps(['v', 256], 0)).toEqual(scatter);
    expect(gatherGradOps(undefined, 0)).toEqual(scatter);
  });
});

/** Which of Gemm / ScatterElements the Gather rule emits for a table of static shape `dims`. */
function gatherGradOps(dims: (number | string)[] | undefined, axis: number): string[] {
  const node = { name: 'g', op_type: 'Gather', input: ['table', 'ids'], output: ['y'], attribute: makeAttrs({ axis: A.int(axis) }) };
  const emit = new Emitter({ uniqueName: (b) => b }, 'g/grad', (n) => (n === 'table' ? dims : undefined));
  const ctx = makeRuleContext({ node, opset: 17, gradOutputs: ['dy'], needsGrad: (i) => i === 0, emit, constants: { initializer: () => undefined, producer: () => undefined }, shape: (n) => emit.shapeOf(n) });
  findRule('Gather')!.rule(ctx);
  return emit.nodes.map((n) => n.op_type!).filter((op) => op === 'Gemm' || op === 'ScatterElements');
}

describe('Expand gradient', () => {
  it('rank increase and size-1 broadcast', async () => {
    await gradCheckBoth({ op: 'Expand', inputs: [f(3, 1), ci([2, 3, 4])] });
  });
  it('target shape of lower rank with 1s', async () => {
    await gradCheckBoth({ op: 'Expand', inputs: [f(2, 1, 4), di([3, 1])] });
  });
  it('sums the broadcast copies (hand-checked)', async () => {
    await bothExact({ op: 'Expand', inputs: [f(2), ci([3, 2])] }, (r) => {
      const dy = r.dys[0];
      const dx = r.grads.get(0)!;
      expect(dx[0]).toBeCloseTo(dy[0] + dy[2] + dy[4], 6);
      expect(dx[1]).toBeCloseTo(dy[1] + dy[3] + dy[5], 6);
    });
  });
});

describe('Tile gradient', () => {
  it('constant repeats', async () => {
    await gradCheckBoth({ op: 'Tile', inputs: [f(2, 3, 2), ci([2, 1, 3])] });
  });
  it('dynamic repeats', async () => {
    await gradCheckBoth({ op: 'Tile', inputs: [f(3, 2), di([2, 2])] });
  });
  it('sums the tiled copies (hand-checked)', async () => {
    await bothExact({ op: 'Tile', inputs: [f(2), ci([3])] }, (r) => {
      const dy = r.dys[0];
      const dx = r.grads.get(0)!;
      expect(dx[0]).toBeCloseTo(dy[0] + dy[2] + dy[4], 6);
      expect(dx[1]).toBeCloseTo(dy[1] + dy[3] + dy[5], 6);
    });
  });
});

describe('Pad gradient', () => {
  it('positive and negative pads (opset 13)', async () => {
    await gradCheckBoth({ op: 'Pad', inputs: [f(3, 4, 5), ci([1, -1, 2, 0, 2, -3])], opset: 13 });
  });
  it('dynamic pads and a differentiable constant value', async () => {
    await gradCheckBoth({ op: 'Pad', inputs: [f(3, 4), di([2, -1, 0, 3]), f()], opset: 13 });
  });
  it('axes input with negative axes (opset 18)', async () => {
    await gradCheckBoth({ op: 'Pad', inputs: [f(2, 3, 4), ci([1, -1, 2, 2]), { dims: [], diff: false }, ci([-1, 0])], opset: 18 });
  });
  it('dynamic axes input (opset 19)', async () => {
    await gradCheckBoth({ op: 'Pad', inputs: [f(2, 3, 4), di([-1, 2]), f(), di([1])], opset: 19 });
  });
  it('crops where the forward padded and pads where it cropped (hand-checked)', async () => {
    // pads [1, -2] on 4 elements: Y = [c, x0, x1].
    await bothExact({ op: 'Pad', inputs: [f(4), ci([1, -2]), f()], opset: 13 }, (r) => {
      const dy = r.dys[0];
      expect(Array.from(r.grads.get(0)!)).toEqual([dy[1], dy[2], 0, 0]);
      expect(r.grads.get(2)![0]).toBeCloseTo(dy[0], 6);
    });
  });
  it('refuses reflect mode with one clear error', async () => {
    await expect(gradCheck({ op: 'Pad', inputs: [f(4), ci([1, 1])], attrs: { mode: A.string('reflect') }, opset: 13 })).rejects.toThrow(GrlError);
    await expect(gradCheck({ op: 'Pad', inputs: [f(4), ci([1, 1])], attrs: { mode: A.string('edge') }, opset: 13 })).rejects.toThrow("Pad node 'Pad_node': no gradient for mode 'edge' (only 'constant' is supported)");
  });
});

describe('Trilu gradient', () => {
  it('upper with k = -1 (static k)', async () => {
    await gradCheckBoth({ op: 'Trilu', inputs: [f(2, 4, 5), ci([-1], [])], attrs: { upper: A.int(1) } });
  });
  it('lower with k = 2 (dynamic k)', async () => {
    await gradCheckBoth({ op: 'Trilu', inputs: [f(4, 5), di([2], [])], attrs: { upper: A.int(0) } });
  });
  it('applies the same mask to dY (hand-checked, lower, k = 1)', async () => {
    await bothExact({ op: 'Trilu', inputs: [f(3, 3), ci([1], [])], attrs: { upper: A.int(0) } }, (r) => {
      const dy = r.dys[0];
      const keep = [1, 1, 0, 1, 1, 1, 1, 1, 1];
      expect(Array.from(r.grads.get(0)!)).toEqual(keep.map((m, i) => (m ? dy[i] : 0)));
    });
  });
});

describe('non-differentiable and constant ops', () => {
  const ops = ['Shape', 'Size', 'Range', 'Equal', 'NonZero', 'Not', 'And', 'Or', 'Less', 'Greater', 'ArgMax', 'ConstantOfShape', 'Constant'];
  it.each(ops)('%s is registered, returns nulls and declares its inputs non-differentiable', (op) => {
    const entry = findRule(op);
    expect(entry).toBeDefined();
    const n = op === 'Constant' ? 0 : op === 'Range' ? 3 : entry!.nonDifferentiable!.length;
    const ctx = { numInputs: n, gradOutput: () => 'dy', needsGrad: () => true } as never;
    expect(entry!.rule(ctx)).toEqual(Array.from({ length: n }, () => null));
    expect(entry!.nonDifferentiable ?? []).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});

describe('opsets whose forward op keeps its arguments in attributes', () => {
  it.each([['Slice', 10], ['Pad', 11], ['Tile', 6]] as const)('%s declares minOpset %d and refuses older nodes by name', (op, min) => {
    const entry = findRule(op)!;
    expect(entry.minOpset).toBe(min);
    const ctx = {
      node: { name: 'old_node', op_type: op }, opset: min - 1, numInputs: 2,
      input: (i: number) => (i === 0 ? 'x' : ''), gradOutput: () => 'dy', needsGrad: (i: number) => i === 0,
      attrString: (_: string, d: string) => d, constInts: () => undefined,
    } as never;
    expect(() => entry.rule(ctx)).toThrow(new RegExp(`^${op} node 'old_node': opset ${min - 1} ${op} .* has no gradient rule; opset ${min}\\+ is supported$`));
  });
});
