// The LayerNorm fusion before differentiation (src/grad/fuse.ts): the decomposed
// LayerNorms of an opset-14 export become LayerNormalization-17 nodes, the training
// graph computes the same losses and gradients as without fusion (both run in
// onnxruntime), and a chain whose intermediate is needed elsewhere is left alone.
import { loadModel, Model } from '../../src/onnx/io';
import { float32Tensor } from '../../src/onnx/tensor';
import { buildTrainingGraph, TrainingGraph } from '../../src/grad/training';
import { fuseLayerNorms } from '../../src/grad/fuse';
import { NodeProto } from '../../src/onnx/proto';
import { makeTensor } from '../../src/onnx/tensor';
import { DataType } from '../../src/onnx/proto';
import { modelPath } from '../fixtures/reference';
import { expectSameTraining } from '../helpers/training';



describe('LayerNorm fusion', () => {
  const model = loadModel(modelPath('tagger-opset14'));
  // The GELU fusion (perf-gelu.test.ts) would raise the opset to 20; this suite isolates LayerNorm's.
  const fused = buildTrainingGraph(model, { losses: [{ head: 'pos' }], fuseGelu: false });
  const plain = buildTrainingGraph(model, { losses: [{ head: 'pos' }], fuseLayerNorm: false, fuseGelu: false });

  it('folds every decomposed LayerNorm of an opset-14 export and raises the opset to 17', () => {
    const ops = (tg: TrainingGraph) => tg.training.graph!.node!.map((n) => n.op_type);
    const pows = model.proto.graph!.node!.filter((n) => n.op_type === 'Pow').length;
    expect(pows).toBe(5);
    expect(ops(fused).filter((o) => o === 'LayerNormalization')).toHaveLength(5);
    expect(ops(fused)).not.toContain('Pow');
    expect(ops(plain)).toContain('Pow');
    expect(ops(plain)).not.toContain('LayerNormalization');
    expect(fused.training.opset_import!.find((o) => !o.domain)!.version).toBe(17);
    expect(plain.training.opset_import!.find((o) => !o.domain)!.version).toBe(16);
    const ln = fused.training.graph!.node!.find((n) => n.op_type === 'LayerNormalization')!;
    expect(ln.name).toBe('/encoder/embeddings/norm/LayerNormalization');
    expect(ln.input).toEqual(['/encoder/embeddings/Add_1_output_0', 'encoder.embeddings.norm.weight', 'encoder.embeddings.norm.bias']);
  });

  it('gives the same loss and parameter gradients as the unfused graph', async () => {
    await expectSameTraining(model, fused, plain, 5);
  });

  it('leaves a decomposition alone when an intermediate is also read elsewhere or eps is not constant', () => {
    const n = (op: string, input: string[], output: string, attrs: NodeProto['attribute'] = []): NodeProto => ({ name: `/ln/${output}`, op_type: op, input, output: [output], attribute: attrs });
    const axes = [{ name: 'axes', type: 7, ints: [-1] }];
    const chain = (eps: string) => [
      n('ReduceMean', ['x'], 'm', axes), n('Sub', ['x', 'm'], 'd'), n('Pow', ['d', 'two'], 'p'), n('ReduceMean', ['p'], 'v', axes),
      n('Add', ['v', eps], 've'), n('Sqrt', ['ve'], 's'), n('Div', ['d', 's'], 'nrm'), n('Mul', ['nrm', 'g'], 'y1'), n('Add', ['y1', 'b'], 'y'),
    ];
    const inits = [makeTensor('two', DataType.FLOAT, [], Float32Array.of(2)), makeTensor('eps', DataType.FLOAT, [], Float32Array.of(1e-5)), float32Tensor('g', [4], new Float32Array(4)), float32Tensor('b', [4], new Float32Array(4))];
    const src = (extra: Record<string, (number | string)[]> = {}) => ({
      initializer: (name: string) => inits.find((t) => t.name === name),
      producer: () => undefined,
      shape: (name: string) => ({ x: ['batch', 4], g: [4], b: [4], ...extra })[name] as (number | string)[] | undefined,
      uniqueName: (base: string) => base,
    });
    const ok = fuseLayerNorms(chain('eps'), new Set(['y']), src());
    expect(ok.fused).toBe(1);
    expect(ok.nodes.map((x) => x.op_type)).toEqual(['LayerNormalization']);
    expect(ok.nodes[0].output![0]).toBe('y');
    // 'nrm' is a graph output: fusing would drop it.
    expect(fuseLayerNorms(chain('eps'), new Set(['y', 'nrm']), src()).fused).toBe(0);
    // eps comes from a graph input.
    expect(fuseLayerNorms(chain('eps_input'), new Set(['y']), src()).fused).toBe(0);
    // gamma does not match the hidden size.
    expect(fuseLayerNorms(chain('eps'), new Set(['y']), src({ g: [1] })).fused).toBe(0);
  });
});
