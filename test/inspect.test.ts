// inspect: the typed report on a fixture, shared-initializer warnings, GRLs,
// ops without gradient rules on differentiable paths, and the text rendering.
import * as path from 'path';
import { loadModel } from '../src/onnx/io';
import { inspectModel, layerOf } from '../src/inspect/inspect';
import { formatInspectReport } from '../src/inspect/format';
import { patchModel } from '../src/patch/patch';
import { float32Tensor } from '../src/onnx/tensor';
import { modelFromProto, multiHeadModel } from './helpers/models';
import { F, makeModel, valueInfo } from './helpers/build';

const TAGGER = path.join(__dirname, '..', 'models', 'tagger-opset14.onnx');

describe('inspectModel on the opset-14 tagger fixture', () => {
  const r = inspectModel(loadModel(TAGGER));

  it('reports versions, producer, inputs and outputs with symbolic dims', () => {
    expect(r.irVersion).toBe(7);
    expect(r.opsets).toEqual([{ domain: 'ai.onnx', version: 14 }]);
    expect(r.producer).toEqual({ name: 'pytorch', version: '1.13.0' });
    expect(r.inputs).toEqual(['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, type: 'INT64', shape: ['batch', 'sequence'] })));
    expect(r.outputs).toEqual([
      { name: 'pos_logits', type: 'FLOAT', shape: ['batch', 'sequence', 17] },
      { name: 'ner_logits', type: 'FLOAT', shape: ['batch', 'sequence', 9] },
    ]);
  });

  it('counts parameters (as models/README.md states) and ops', () => {
    expect(r.parameters).toBe(25274);
    expect(r.initializerBytes).toBeGreaterThanOrEqual(25274 * 4);
    expect(r.externalInitializers).toBe(0);
    expect(r.nodeCount).toBe(267);
    expect(r.ops.reduce((a, o) => a + o.count, 0)).toBe(267);
    expect(r.ops.slice(0, 3)).toEqual([{ op: 'Constant', count: 77 }, { op: 'Add', count: 36 }, { op: 'Gather', count: 20 }]);
  });

  it('lists the heads with their splice tensors, no GRLs and no warnings', () => {
    expect(r.heads).toEqual([
      { name: 'pos', output: 'pos_logits', exclusiveNodes: 12, spliceTensor: '/encoder/layer.1/ffn_norm/Add_1_output_0' },
      { name: 'ner', output: 'ner_logits', exclusiveNodes: 2, spliceTensor: '/encoder/layer.1/ffn_norm/Add_1_output_0' },
    ]);
    expect(r.grls).toEqual([]);
    expect(r.sharedInitializers).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('shows GRLs and their λ after patching', () => {
    const p = patchModel(loadModel(TAGGER), { heads: [{ name: 'pos', lambda: 0.25 }] }).model;
    const rp = inspectModel(p);
    expect(rp.grls).toEqual([{ node: 'pos/grl', head: 'pos', lambda: 0.25, input: '/encoder/layer.1/ffn_norm/Add_1_output_0' }]);
    expect(rp.heads[0]).toEqual({ name: 'pos', output: 'pos_logits', exclusiveNodes: 12, spliceTensor: '/encoder/layer.1/ffn_norm/Add_1_output_0', grl: { node: 'pos/grl', lambda: 0.25, at: '/encoder/layer.1/ffn_norm/Add_1_output_0' } });
    expect(rp.opsets).toContainEqual({ domain: 'ai.grl-onnx', version: 1 });
    expect(rp.ops).toContainEqual({ op: 'ai.grl-onnx::GradientReversal', count: 1 });
    const text = formatInspectReport(rp);
    expect(text).toContain("    pos -> pos_logits: 12 exclusive nodes, leaves the trunk at '/encoder/layer.1/ffn_norm/Add_1_output_0'; GRL 'pos/grl' λ=0.25\n");
    expect(text).toContain('  GRLs: pos/grl (head pos, λ=0.25)\n');
  });

  it('renders the text report', () => {
    const text = formatInspectReport(r);
    expect(text.split('\n').slice(0, 6)).toEqual([
      TAGGER,
      '  IR 7; opsets ai.onnx 14; producer pytorch 1.13.0',
      '  inputs:',
      '    input_ids       int64   [batch, sequence]',
      '    attention_mask  int64   [batch, sequence]',
      '    token_type_ids  int64   [batch, sequence]',
    ]);
    expect(text).toMatch(/\n {2}parameters: 25,274 \(\d+\.\d KiB in \d+ initializers\)\n/);
    expect(text).toContain('  GRLs: none\n');
  });
});

describe('shared-initializer warnings', () => {
  it.each([
    ['encoder/layer.3', '/encoder/layer.3/attention/self/query/MatMul'],
    ['embeddings', '/embeddings/LayerNorm/Mul'],
    ['decoder/h.11', '/decoder/h.11/ln_1/Add'],
    ['(top level)', 'MatMul_3'],
  ])('layer %s from node %s', (layer, node) => {
    expect(layerOf(node)).toBe(layer);
  });

  it('warns when one initializer feeds nodes of different layers, naming it and the layers', () => {
    const r = inspectModel(modelFromProto(multiHeadModel({ shareLayerNorm: true })));
    expect(r.sharedInitializers.map((s) => [s.initializer, s.shape, s.layers])).toEqual([['norm.weight', [4], ['encoder/layer.0', 'encoder/layer.1']]]);
    expect(r.warnings).toEqual([
      "initializer 'norm.weight' [4] feeds nodes of 2 different layers (encoder/layer.0, encoder/layer.1); torch's exporter merges initializers with identical values, so perturb weights before export unless the sharing is intended",
    ]);
    expect(formatInspectReport(r)).toContain("  warnings:\n    - initializer 'norm.weight' [4] feeds nodes of 2 different layers");
    expect(inspectModel(modelFromProto(multiHeadModel())).sharedInitializers).toEqual([]);
  });
});

describe('ops without a gradient rule', () => {
  it('reports unknown ops on a differentiable path, not on a shape path', () => {
    const proto = makeModel({
      nodes: [
        { name: '/a/MatMul', op_type: 'MatMul', input: ['x', 'W'], output: ['h'] },
        { name: '/a/Mystery', op_type: 'Mystery', domain: 'com.example', input: ['h'], output: ['y'] },
        { name: '/b/Shape', op_type: 'Shape', input: ['h'], output: ['s'] },
        { name: '/b/ShapeMystery', op_type: 'ShapeMystery', domain: 'com.example', input: ['s'], output: ['s2'] },
        { name: '/b/Reshape', op_type: 'Reshape', input: ['y', 's2'], output: ['out'] },
      ],
      inputs: [valueInfo('x', F, ['batch', 2])],
      outputs: [valueInfo('out', F, ['batch', 2])],
      initializers: [float32Tensor('W', [2, 2], [1, 2, 3, 4])],
      extraOpsets: [{ domain: 'com.example', version: 1 }],
    });
    const r = inspectModel(modelFromProto(proto));
    expect(r.missingGradientRules).toEqual([{ op: 'Mystery', domain: 'com.example', nodes: ['/a/Mystery'] }]);
    expect(formatInspectReport(r)).toContain('  no gradient rule yet (training would fail): com.example::Mystery (1 node, e.g. /a/Mystery)\n');
  });
});
