// Native Gelu (ONNX opset 20), as torch 2.x's dynamo exporter writes it, end to end:
// models/zoo/gelu-opset20.onnx (approximate='none') and gelu-tanh-opset20.onnx ('tanh'),
// made by scripts/zoo_gelu.py through scripts/export_zoo.py. Both are in ZOO_NAMES, so the
// zoo-wide tests cover them too: forward outputs against torch, bit-identical patch and
// every rank static (test/zoo.test.ts), gradients against torch (test/grad/reference.test.ts),
// one SGD step (test/trainer/trainer.test.ts), `heads add` on the encoders
// (test/heads/zoo.test.ts); the Gelu rule's finite-difference checks, both modes, are in
// test/grad/rules-math.test.ts and test/grad/perf-gelu.test.ts. Here: what is specific to a
// model that already holds Gelu-20 nodes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../src/onnx/io';
import { ModelProto, NodeProto } from '../src/onnx/proto';
import { A, attrString, makeAttrs } from '../src/onnx/attrs';
import { opsetVersion } from '../src/onnx/graph';
import { float32Tensor, tensorToFloat32 } from '../src/onnx/tensor';
import { buildTrainingGraph, TrainingGraph } from '../src/grad/training';
import { Reference, loadReference, modelPath, referenceFeeds } from './fixtures/reference';
import { maxAbsDiff } from './helpers/models';
import { cli } from './helpers/cli';

const MODES = [['zoo/gelu-opset20', 'none'], ['zoo/gelu-tanh-opset20', 'tanh']] as const;
const TOL = 1e-4;

const nodes = (p: ModelProto) => p.graph?.node ?? [];
const gelus = (p: ModelProto) => nodes(p).filter((n) => n.op_type === 'Gelu');

async function forward(p: ModelProto, ref: Reference): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(serializeModel(p));
  try {
    const r = await s.run(referenceFeeds(ref));
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

/** Worst |output − torch| over the reference outputs. */
async function worstVsTorch(p: ModelProto, ref: Reference): Promise<number> {
  const out = await forward(p, ref);
  return Math.max(...Object.entries(ref.outputs).map(([k, want]) => maxAbsDiff(out[k], want.data)));
}

function withGelus(model: Model, edit: (n: NodeProto) => NodeProto[]): Model {
  const g = model.proto.graph!;
  return { ...model, proto: { ...model.proto, graph: { ...g, node: nodes(model.proto).flatMap((n) => (n.op_type === 'Gelu' ? edit(n) : [n])) } } };
}

/** Plain-case gradients of a training graph at the reference batch. */
async function gradients(model: Model, tg: TrainingGraph, ref: Reference): Promise<Map<string, Float32Array>> {
  const feeds: Record<string, ort.Tensor> = referenceFeeds(ref);
  for (const h of tg.heads) {
    const labels = ref.heads.find((x) => x.output === h.output)!.labels;
    feeds[h.labelInput] = new ort.Tensor('int64', BigInt64Array.from(labels.data, BigInt), labels.dims);
  }
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const p of tg.params) if (p.trainable) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)!), p.dims);
  const s = await ort.InferenceSession.create(serializeModel(tg.training));
  try {
    const out = await s.run(feeds);
    return new Map(Object.entries(tg.outputs.grads).map(([p, g]) => [p, out[g].data as Float32Array]));
  } finally {
    await s.release();
  }
}

describe.each(MODES.map(([n, m]) => [n, m]))('%s (approximate=%s)', (name, mode) => {
  const model = loadModel(modelPath(name));
  const ref = loadReference(name);
  const losses = ref.heads.map((h) => ({ head: h.head, weight: h.weight }));

  it('holds three native Gelu-20 nodes in its mode and no GELU decomposition', () => {
    expect(opsetVersion(model.proto)).toBe(20);
    expect(gelus(model.proto).map((n) => [n.name, n.domain ?? '', attrString(n, 'approximate', 'none')])).toEqual(
      ['/bert/layer.0/ffn/Gelu', '/bert/layer.1/ffn/Gelu', '/pos/Gelu'].map((n) => [n, '', mode]));
    expect(nodes(model.proto).filter((n) => ['Erf', 'Tanh', 'Pow'].includes(n.op_type ?? ''))).toEqual([]);
  });

  it("onnxruntime honours `approximate`: the other mode misses torch's outputs", async () => {
    const own = await worstVsTorch(model.proto, ref);
    const other = mode === 'none' ? 'tanh' : 'none';
    const flipped = withGelus(model, (n) => [{ ...n, attribute: makeAttrs({ approximate: A.string(other) }) }]);
    const wrong = await worstVsTorch(flipped.proto, ref);
    // The two modes differ by < 2e-4 at this model's logits; torch's own mode is matched to ~1e-6.
    expect(own).toBeLessThanOrEqual(2e-6);
    expect(wrong).toBeGreaterThan(50 * own);
    expect(wrong).toBeGreaterThan(2e-5);
  });

  it('training graph: the opset stays 20, the Gelu nodes are kept as they are, nothing is fused twice', () => {
    const tg = buildTrainingGraph(model, { losses });
    const unfused = buildTrainingGraph(model, { losses, fuseGelu: false, fuseLayerNorm: false });
    for (const t of [tg, unfused]) {
      expect(t.training.opset_import?.filter((o) => !o.domain)).toEqual([{ domain: '', version: 20 }]);
      expect(gelus(t.training).map((n) => [n.name, attrString(n, 'approximate', 'none')])).toEqual(gelus(model.proto).map((n) => [n.name, mode]));
    }
    expect(nodes(tg.training).map((n) => n.op_type)).toEqual(nodes(unfused.training).map((n) => n.op_type));
  });

  it('`grl-onnx train` runs three steps with a GRL on pos and writes an opset-20 model with the same Gelu nodes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-gelu-'));
    try {
      const [B, T] = ref.inputs.input_ids.dims;
      const lines: string[] = [];
      for (let b = 0; b < B; b++) {
        const len = ref.inputs.attention_mask.data.slice(b * T, (b + 1) * T).reduce((x, y) => x + y, 0);
        const rec: Record<string, number[]> = {};
        for (const [k, t] of Object.entries(ref.inputs)) rec[k] = t.data.slice(b * T, b * T + len);
        for (const h of ref.heads) rec[h.head] = h.labels.data.slice(b * T, b * T + len);
        lines.push(JSON.stringify(rec));
      }
      fs.writeFileSync(path.join(dir, 'train.jsonl'), `${lines.join('\n')}\n`);
      const out = path.join(dir, 'run');
      const r = await cli(['train', modelPath(name), '--data', path.join(dir, 'train.jsonl'), '--loss', 'pos', '--loss', 'ner:0.5',
        '--head', 'pos:0.7', '--optimizer', 'sgd', '--lr', '0.5', '--batch-size', '3', '--steps', '3', '--threads', '1', '--json', '--out', out]);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.step !== undefined && x.loss !== undefined);
      expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
      expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
      expect(steps[0].loss).toBeCloseTo(ref.cases.plain.total_loss, 4);
      expect(steps[2].loss).toBeLessThan(steps[0].loss);
      const trained = loadModel(path.join(out, 'model.onnx'));
      expect(opsetVersion(trained.proto)).toBe(20);
      expect(gelus(trained.proto).map((n) => attrString(n, 'approximate', 'none'))).toEqual([mode, mode, mode]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an erf-GELU chain next to native Gelu nodes in an opset-20 model', () => {
  const name = 'zoo/gelu-opset20';
  const model = loadModel(modelPath(name));
  const ref = loadReference(name);
  const losses = ref.heads.map((h) => ({ head: h.head, weight: h.weight }));
  // The pos head's Gelu written out as torch 1.13 exports F.gelu: 0.5 * (x * (1 + erf(x / sqrt2))).
  const mixed = withGelus(model, (n) => {
    if (n.name !== '/pos/Gelu') return [n];
    const [x, y] = [n.input![0], n.output![0]];
    return [
      { name: '/pos/Div', op_type: 'Div', input: [x, 'pos_sqrt2'], output: ['/pos/Div_output_0'] },
      { name: '/pos/Erf', op_type: 'Erf', input: ['/pos/Div_output_0'], output: ['/pos/Erf_output_0'] },
      { name: '/pos/Add', op_type: 'Add', input: ['/pos/Erf_output_0', 'pos_one'], output: ['/pos/Add_output_0'] },
      { name: '/pos/Mul', op_type: 'Mul', input: [x, '/pos/Add_output_0'], output: ['/pos/Mul_output_0'] },
      { name: '/pos/Mul_1', op_type: 'Mul', input: ['/pos/Mul_output_0', 'pos_half'], output: [y] },
    ];
  });
  mixed.proto.graph!.initializer = [...(model.proto.graph?.initializer ?? []),
    float32Tensor('pos_sqrt2', [], [Math.SQRT2]), float32Tensor('pos_one', [], [1]), float32Tensor('pos_half', [], [0.5])];

  it('is fused into one more Gelu (three in all), at opset 20, with the gradients of the native model', async () => {
    expect(gelus(mixed.proto)).toHaveLength(2);
    expect(await worstVsTorch(mixed.proto, ref)).toBeLessThanOrEqual(TOL);
    const tg = buildTrainingGraph(mixed, { losses });
    expect(tg.training.opset_import?.filter((o) => !o.domain)).toEqual([{ domain: '', version: 20 }]);
    expect(gelus(tg.training).map((n) => n.name).sort()).toEqual(['/bert/layer.0/ffn/Gelu', '/bert/layer.1/ffn/Gelu', '/pos/Gelu']);
    const native = buildTrainingGraph(model, { losses });
    expect(nodes(tg.training).map((n) => n.op_type)).toEqual(nodes(native.training).map((n) => n.op_type));
    const [a, b] = [await gradients(mixed, tg, ref), await gradients(model, native, ref)];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [p, g] of a) expect([p, maxAbsDiff(g, b.get(p)!)]).toEqual([p, 0]);
  });
});
