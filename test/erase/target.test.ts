// Where `erase` fits by default: the `from` tensor heads added by `heads add` record,
// else an encoder's last_hidden_state, else the one splice tensor all heads share.
import * as path from 'path';
import { loadModel } from '../../src/onnx/io';
import { Graph } from '../../src/onnx/graph';
import { addHeads } from '../../src/heads/add';
import { hiddenStates } from '../../src/heads/encoder';
import { defaultErasureTensor, erasureTarget } from '../../src/erase/target';
import { modelFromProto } from '../helpers/models';
import { DataType, ModelProto } from '../../src/onnx/proto';
import { float32Tensor } from '../../src/onnx/tensor';

/** x → MatMul → a → Tanh → b; head one reads a, heads two and three read b. */
function twoDepths(): ModelProto {
  const w = (name: string) => float32Tensor(name, [4, 4], Array.from({ length: 16 }, (_, k) => Math.cos(k + name.length)));
  const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'N' }, { dim_value: 4 }] } } } });
  const mm = (x: string, wn: string, out: string) => ({ name: `/${out}/MatMul`, op_type: 'MatMul', input: [x, wn], output: [out] });
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'two', input: [vi('x')], output: [vi('one_logits'), vi('two_logits'), vi('three_logits')],
      initializer: [w('w0'), w('w1'), w('w2'), w('w3')],
      node: [mm('x', 'w0', 'a'), { name: '/tanh', op_type: 'Tanh', input: ['a'], output: ['b'] }, mm('a', 'w1', 'one_logits'), mm('b', 'w2', 'two_logits'), mm('b', 'w3', 'three_logits')],
    },
  };
}

const MODELS = path.join(__dirname, '../../models');

describe('the default tensor to erase at', () => {
  test('an encoder export: last_hidden_state (not pooler_output)', () => {
    expect(defaultErasureTensor(loadModel(path.join(MODELS, 'encoders/bert-encoder.onnx')))).toBe('last_hidden_state');
  });

  test('heads added with --from: the recorded from tensor wins over last_hidden_state', () => {
    const enc = loadModel(path.join(MODELS, 'encoders/bert-encoder.onnx'));
    const layer0 = hiddenStates(new Graph(enc.proto.graph ?? {}))[1].tensor;
    const { model } = addHeads(enc, [{ name: 'pos', classes: 17, from: layer0 }]);
    expect(defaultErasureTensor(model)).toBe(layer0);
    // The label is a head now: token level and classes come from its output.
    expect(erasureTarget(model, 'pos')).toMatchObject({ tensor: layer0, tokenLevel: true, numClasses: 17 });
  });

  test('the tiny tagger: where both heads leave the trunk', () => {
    expect(defaultErasureTensor(loadModel(path.join(MODELS, 'tiny-tagger.onnx')))).toBe('/encoder/layer.1/ffn_norm/LayerNormalization_output_0');
  });

  test('heads that leave the trunk at different tensors: ask for --at', () => {
    const m = modelFromProto(twoDepths(), 'two.onnx');
    expect(() => defaultErasureTensor(m)).toThrow("two.onnx: cannot tell which hidden states to erase at (the heads read 'a', 'b'); give --at TENSOR");
  });
});
