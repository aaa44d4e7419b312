// The erf-GELU fusion before differentiation (src/grad/fuse.ts) and the lean Gelu
// backward (src/grad/rules/Gelu.ts): every exporter ordering of 0.5 * x * (1 + erf(x/sqrt2))
// becomes one Gelu-20 node, only when raising the opset to 20 changes no other node's
// meaning, and the fused training graph gives the same losses and gradients.
import { loadModel, Model } from '../../src/onnx/io';
import { float32Tensor, makeTensor } from '../../src/onnx/tensor';
import { buildTrainingGraph, TrainingGraph } from '../../src/grad/training';
import { fuseGelus, opsetRaiseBlockers } from '../../src/grad/fuse';
import { DataType, NodeProto, TensorProto } from '../../src/onnx/proto';
import { A, makeAttrs } from '../../src/onnx/attrs';
import { modelPath } from '../fixtures/reference';
import { gradCheckBoth } from '../helpers/gradcheck';
import { expectSameTraining } from '../helpers/training';

const n = (op: string, input: string[], output: string, attrs: NodeProto['attribute'] = []): NodeProto => ({ name: `/ffn/${output}`, op_type: op, input, output: [output], attribute: attrs });
const scalars: TensorProto[] = [
  makeTensor('sqrt2', DataType.FLOAT, [], Float32Array.of(Math.SQRT2)),
  makeTensor('inv_sqrt2', DataType.FLOAT, [], Float32Array.of(Math.SQRT1_2)),
  makeTensor('one', DataType.FLOAT, [], Float32Array.of(1)),
  makeTensor('half', DataType.FLOAT, [], Float32Array.of(0.5)),
  makeTensor('three', DataType.FLOAT, [], Float32Array.of(3)),
  float32Tensor('w', [4], new Float32Array(4)),
];
const src = () => {
  const inits = new Map(scalars.map((t) => [t.name ?? '', t]));
  const used = new Set<string>();
  return {
    initializer: (name: string) => inits.get(name),
    producer: (name: string) => chainNodes.find((c) => c.output?.[0] === name),
    shape: () => undefined,
    uniqueName: (base: string) => { let s = base; for (let k = 1; used.has(s); k++) s = `${base}_${k}`; used.add(s); return s; },
  };
};
let chainNodes: NodeProto[] = [];

/** The GELU chain in one of the exporters' orders; `y` is its output, `x` its input. */
function chain(order: 'x*a*half' | 'half*x*a' | 'x*(a*half)', scale: 'div' | 'mul', consts: { sqrt2?: string; one?: string } = {}): NodeProto[] {
  const first = scale === 'div' ? n('Div', ['x', consts.sqrt2 ?? 'sqrt2'], 't') : n('Mul', ['inv_sqrt2', 'x'], 't');
  const head = [first, n('Erf', ['t'], 'e'), n('Add', [consts.one ?? 'one', 'e'], 'a')];
  if (order === 'x*a*half') return [...head, n('Mul', ['x', 'a'], 'xa'), n('Mul', ['xa', 'half'], 'y')];
  if (order === 'half*x*a') return [n('Mul', ['x', 'half'], 'hx'), ...head, n('Mul', ['a', 'hx'], 'y')];
  return [...head, n('Mul', ['half', 'a'], 'ha'), n('Mul', ['ha', 'x'], 'y')];
}

function fuse(nodes: NodeProto[], outputs = ['y']) {
  chainNodes = nodes;
  return fuseGelus(nodes, new Set(outputs), src());
}

describe('erf-GELU fusion', () => {
  for (const order of ['x*a*half', 'half*x*a', 'x*(a*half)'] as const) {
    for (const scale of ['div', 'mul'] as const) {
      it(`folds ${order} with x/sqrt2 as ${scale} into one Gelu`, () => {
        const r = fuse([n('Relu', ['in'], 'x'), ...chain(order, scale), n('Mul', ['y', 'w'], 'z')], ['z']);
        expect(r.fused).toBe(1);
        expect(r.nodes.map((m) => m.op_type)).toEqual(['Relu', 'Gelu', 'Mul']);
        const g = r.nodes[1];
        expect(g.input).toEqual(['x']);
        expect(g.output).toEqual(['y']);
        expect(g.name).toBe('/ffn/Gelu');
      });
    }
  }

  it('leaves the chain alone when an intermediate is read elsewhere, is a graph output, or a constant is off', () => {
    expect(fuse([...chain('x*a*half', 'div'), n('Mul', ['e', 'w'], 'z')], ['y', 'z']).fused).toBe(0);
    expect(fuse(chain('x*a*half', 'div'), ['y', 'a']).fused).toBe(0);
    expect(fuse(chain('x*a*half', 'div', { sqrt2: 'three' })).fused).toBe(0);
    expect(fuse(chain('x*a*half', 'div', { one: 'half' })).fused).toBe(0);
    expect(fuse(chain('x*a*half', 'div', { sqrt2: 'x_runtime' })).fused).toBe(0);
  });

  it('names the ops whose meaning changes when the opset is raised to 20', () => {
    const axes = makeAttrs({ axes: A.ints([-1]) });
    const nodes = [n('ReduceMean', ['x'], 'm', axes), n('ReduceMean', ['x'], 'all'), n('ReduceMax', ['x'], 'mx', axes), n('Split', ['x'], 's'), n('Pad', ['x', 'p'], 'pd'), n('Add', ['x', 'x'], 'ok')];
    expect(opsetRaiseBlockers(nodes, 14, 20).map((b) => b.output?.[0])).toEqual(['m', 'mx', 's', 'pd']);
    expect(opsetRaiseBlockers(nodes, 18, 20)).toEqual([]);
    expect(opsetRaiseBlockers([n('GridSample', ['x', 'g'], 'gs')], 18, 20)).toHaveLength(1);
    expect(opsetRaiseBlockers([n('ReduceMean', ['x'], 'm', axes)], 14, 17)).toEqual([]);
    expect(opsetRaiseBlockers([{ ...n('ReduceMean', ['x'], 'm', axes), domain: 'com.example' }], 14, 20)).toEqual([]);
  });
});

describe('erf-GELU fusion in the training graph', () => {
  const ops = (tg: TrainingGraph) => tg.training.graph!.node!.map((m) => m.op_type);
  const version = (tg: TrainingGraph) => tg.training.opset_import!.find((o) => !o.domain)!.version;

  for (const name of ['tagger-opset14', 'tagger-opset17'] as const) {
    it(`${name}: every GELU becomes Gelu-20 and the losses and gradients are unchanged`, async () => {
      const model = loadModel(modelPath(name));
      const fused = buildTrainingGraph(model, { losses: [{ head: 'pos' }] });
      const plain = buildTrainingGraph(model, { losses: [{ head: 'pos' }], fuseGelu: false });
      expect(ops(fused).filter((o) => o === 'Gelu')).toHaveLength(3);
      expect(ops(plain)).not.toContain('Gelu');
      expect(version(fused)).toBe(20);
      expect(version(plain)).toBe(17);
      await expectSameTraining(model, fused, plain, 11);
    });
  }

  it('keeps the decomposition and the opset when a ReduceMean with an axes attribute stays (opset 14, no LayerNorm fusion)', () => {
    const tg = buildTrainingGraph(loadModel(modelPath('tagger-opset14')), { losses: [{ head: 'pos' }], fuseLayerNorm: false });
    expect(ops(tg)).not.toContain('Gelu');
    expect(ops(tg)).toContain('Erf');
    expect(version(tg)).toBe(16);
  });
});

describe('Gelu backward (approximate none), finite differences', () => {
  it('over the tails and the centre', async () => {
    await gradCheckBoth({ op: 'Gelu', opset: 20, inputs: [{ dims: [3, 5, 8], scale: 3 }], seed: 7 });
  });
  it('at hand-picked points including 0 and large |x|', async () => {
    await gradCheckBoth({ op: 'Gelu', opset: 20, inputs: [{ dims: [8], values: [-6, -2.5, -1, -0.1, 0, 0.3, 1.7, 5] }], eps: 1e-3 });
  });
});

describe('Gelu backward (approximate tanh), finite differences', () => {
  const attrs = { approximate: A.string('tanh') };
  it('over the tails and the centre', async () => {
    await gradCheckBoth({ op: 'Gelu', opset: 20, attrs, inputs: [{ dims: [3, 5, 8], scale: 3 }], seed: 7 });
  });
  it('at hand-picked points including 0 and large |x|', async () => {
    await gradCheckBoth({ op: 'Gelu', opset: 20, attrs, inputs: [{ dims: [8], values: [-6, -2.5, -1, -0.1, 0, 0.3, 1.7, 5] }], eps: 1e-3 });
  });
});
