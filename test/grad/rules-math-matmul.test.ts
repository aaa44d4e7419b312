// Finite-difference checks (static and symbolic shapes) of MatMul and Gemm, and
// exact hand-computed products.
import { gradCheck, gradCheckBoth } from '../helpers/gradcheck';
import { A } from '../../src/onnx/attrs';
import { ruleOutput, runRule } from './rules-math-util';

describe('MatMul gradient (numpy semantics)', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D x 2-D', [3, 4], [4, 5]],
    ['3-D x 2-D weight (dense layer, Gemm over flattened rows)', [2, 3, 4], [4, 5]],
    ['4-D attention-style scores Q @ K^T', [2, 3, 5, 4], [2, 3, 4, 5]],
    ['2-D x 3-D: batched broadcast of A', [3, 4], [2, 4, 5]],
    ['3-D x 4-D with size-1 batch axes on both sides', [3, 1, 2, 4], [1, 2, 4, 3]],
    ['batch 1 broadcast against batch 2', [1, 3, 4], [2, 4, 5]],
    ['1-D x 2-D', [4], [4, 5]],
    ['1-D x 3-D', [4], [2, 4, 5]],
    ['2-D x 1-D', [3, 4], [4]],
    ['3-D x 1-D', [2, 3, 4], [4]],
    ['1-D x 1-D (dot product)', [4], [4]],
  ];
  for (const [label, a, b] of cases) {
    it(`${label}: [${a}] @ [${b}]`, async () => {
      await gradCheckBoth({ op: 'MatMul', inputs: [{ dims: a }, { dims: b }] });
    });
  }
  it('only the weight gradient is built when A is not trainable', async () => {
    await gradCheckBoth({ op: 'MatMul', inputs: [{ dims: [2, 3, 4], diff: false }, { dims: [4, 5] }] });
  });
  it('exact: [1,2]x[[1,2],[3,4]] gives dA = dY B^T and dB = A^T dY', async () => {
    const r = await gradCheck({ op: 'MatMul', inputs: [{ dims: [1, 2], values: [1, 2] }, { dims: [2, 2], values: [1, 2, 3, 4] }] }, 'static');
    const dB = r.grads.get(1)!;
    // dB = A^T dY = [[dy0, dy1], [2 dy0, 2 dy1]], so dY is its first row.
    const dy = [dB[0], dB[1]];
    expect(dB[2]).toBeCloseTo(2 * dy[0], 6);
    expect(dB[3]).toBeCloseTo(2 * dy[1], 6);
    const dA = r.grads.get(0)!;
    expect(dA[0]).toBeCloseTo(dy[0] * 1 + dy[1] * 2, 5);
    expect(dA[1]).toBeCloseTo(dy[0] * 3 + dy[1] * 4, 5);
  });
  it('a dense layer X[B,T,K] @ W[K,N] gets dW from one Gemm over flattened rows, with symbolic B and T', () => {
    const r = runRule('MatMul', {}, ['x', 'w'], ['y'], { shapes: { x: ['batch', 'seq', 4], w: [4, 5], y: ['batch', 'seq', 5] } });
    const dW = r.nodes.find((n) => n.output![0] === r.grads[1])!;
    expect(dW.op_type).toBe('Gemm');
    expect(r.nodes.map((n) => n.op_type).sort()).toEqual(['Flatten', 'Flatten', 'Gemm', 'MatMul', 'Transpose']);
  });
  it('attention Q @ K^T with equal symbolic batch dims needs no unbroadcast', () => {
    const r = runRule('MatMul', {}, ['q', 'kt'], ['s'], { shapes: { q: ['batch', 4, 'seq', 8], kt: ['batch', 4, 8, 'seq'], s: ['batch', 4, 'seq', 'seq'] } });
    expect(r.nodes.map((n) => n.op_type).sort()).toEqual(['MatMul', 'MatMul', 'Transpose', 'Transpose']);
  });
  it('fails with one line naming the node when a rank is unknown', () => {
    expect(() => ruleOutput('MatMul', {}, ['a', 'b'], ['y'], { shapes: { a: [2, 3] } })).toThrow(/MatMul node 'MatMul_node': the rank of 'b' is unknown/);
  });
});

describe('Gemm gradient', () => {
  const flags: [number, number][] = [[0, 0], [1, 0], [0, 1], [1, 1]];
  for (const [tA, tB] of flags) {
    it(`transA=${tA} transB=${tB}, alpha=0.7 beta=1.3, C [N]`, async () => {
      await gradCheckBoth({
        op: 'Gemm',
        attrs: { transA: A.int(tA), transB: A.int(tB), alpha: A.float(0.7), beta: A.float(1.3) },
        inputs: [{ dims: tA ? [4, 3] : [3, 4] }, { dims: tB ? [5, 4] : [4, 5] }, { dims: [5] }],
      });
    });
  }
  const cShapes: number[][] = [[3, 5], [1, 5], [3, 1], [], [1, 1]];
  for (const c of cShapes) {
    it(`C [${c}] broadcast to [3,5]`, async () => {
      await gradCheckBoth({ op: 'Gemm', attrs: { beta: A.float(0.5) }, inputs: [{ dims: [3, 4] }, { dims: [4, 5] }, { dims: c }] });
    });
  }
  it('without C (the optional input omitted)', async () => {
    await gradCheckBoth({ op: 'Gemm', attrs: { transB: A.int(1) }, inputs: [{ dims: [3, 4] }, { dims: [5, 4] }] });
  });
  it('the default attributes (a torch Linear export: transB=1, alpha=beta=1)', async () => {
    await gradCheckBoth({ op: 'Gemm', attrs: { transB: A.int(1) }, inputs: [{ dims: [2, 4] }, { dims: [3, 4] }, { dims: [3] }] });
  });
  it('exact: dC for a bias is beta times the column sums of dY', async () => {
    const r = await gradCheck({ op: 'Gemm', attrs: { beta: A.float(2) }, inputs: [{ dims: [2, 1], values: [1, 1] }, { dims: [1, 2], values: [0, 0] }, { dims: [2], values: [0, 0] }] }, 'static');
    // With B = 0 the input A gets no signal, but dB = A^T dY = column sums of dY.
    const dB = r.grads.get(1)!;
    const dC = r.grads.get(2)!;
    expect(dC[0]).toBeCloseTo(2 * dB[0], 5);
    expect(dC[1]).toBeCloseTo(2 * dB[1], 5);
  });
});
