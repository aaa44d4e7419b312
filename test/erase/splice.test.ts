// The eraser as ONNX nodes: each spliced eraser reproduces x @ P (+ c) computed
// here, through stock onnxruntime; every consumer of the tensor reads the erased
// value; the model's other outputs are unchanged by an identity eraser; a second
// eraser at the same tensor is refused unless replacing; removal restores the
// original bytes; the metadata records what the eraser was fit on.
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import type { Model } from '../../src/onnx/io';
import { DataType, ModelProto, TensorProto } from '../../src/onnx/proto';
import { float32Tensor, tensorToFloat32 } from '../../src/onnx/tensor';
import { Eraser, denseEraser, makeEraser } from '../../src/erase/eraser';
import { randomEraser } from '../../src/erase/random';
import { fitLeace } from '../../src/erase/leace';
import { readErasers, removeEraser, removeErasers, spliceEraser } from '../../src/erase/splice';
import { buildTrainingGraph } from '../../src/grad/training';
import { Rng } from '../../src/data/jsonl';
import { gaussian } from '../../src/probe/probe';
import { feedsFor, modelFromProto } from '../helpers/models';

const TAGGER = loadModel(path.join(__dirname, '../../models/tiny-tagger.onnx'));
const T = '/encoder/layer.1/ffn_norm/LayerNormalization_output_0';
const D = 128;

/** Run `model` with extra graph outputs and return every output by name. */
async function run(model: Model | ModelProto, feeds: Record<string, ort.Tensor>, extra: string[] = []): Promise<Record<string, ort.Tensor>> {
  const proto = 'proto' in model ? model.proto : model;
  const g = proto.graph ?? {};
  const outputs = [...(g.output ?? []), ...extra.map((name) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } }))];
  const s = await ort.InferenceSession.create(serializeModel({ ...proto, graph: { ...g, output: outputs } }));
  try {
    return (await s.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await s.release();
  }
}

/** x @ P + c in float64, row by row, for row-major [rows, d]. */
function affine(e: Eraser, x: Float32Array): Float64Array {
  const { p, c } = denseEraser(e);
  const d = e.dim;
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    for (let j = 0; j < d; j++) {
      let s = c ? c[j] : 0;
      for (let i = 0; i < d; i++) s += x[r * d + i] * p[i * d + j];
      out[r * d + j] = s;
    }
  }
  return out;
}

function maxRelErr(got: Float32Array, want: Float64Array): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    err = Math.max(err, Math.abs(got[i] - want[i]));
  }
  return err / scale;
}

function randomLeace(dim: number, seed: number): Eraser {
  const rng = new Rng(seed);
  const rows = 400;
  const x = Float32Array.from({ length: rows * dim }, () => gaussian(rng));
  const y = Int32Array.from({ length: rows }, (_, r) => r % 3);
  for (let r = 0; r < rows; r++) x[r * dim + (r % 3)] += 2;
  return fitLeace(x, y, dim, 3).eraser;
}

describe('spliceEraser on the tiny tagger', () => {
  const feeds = feedsFor(TAGGER.proto, 3, 7);
  const leace = randomLeace(D, 1);

  test('the MatMul + Add reproduce x @ P + c, and both heads read the erased tensor', async () => {
    const { model, record } = spliceEraser(TAGGER, leace, { tensor: T, fit: { label: 'pos', data: 'x.jsonl' } });
    expect(record).toMatchObject({ method: 'leace', tensor: T, input: `${T}/before_erase`, output: T, nodes: ['erase/leace/MatMul', 'erase/leace/Add'], initializers: ['erase/leace/P', 'erase/leace/c'], dim: D, rank: 2 });
    const out = await run(model, feeds, [record.input, T]);
    const raw = out[record.input].data as Float32Array;
    expect(out[T].dims).toEqual([3, 7, D]);
    expect(maxRelErr(out[T].data as Float32Array, affine(leace, raw))).toBeLessThan(1e-5);
    // The raw tensor is what the original model computes at T.
    const orig = await run(TAGGER, feeds, [T]);
    expect(Buffer.compare(Buffer.from((orig[T].data as Float32Array).buffer), Buffer.from(raw.buffer))).toBe(0);
    // The heads now see the erased tensor: their logits change.
    for (const o of ['pos_logits', 'ner_logits']) expect(Buffer.compare(Buffer.from((orig[o].data as Float32Array).buffer), Buffer.from((out[o].data as Float32Array).buffer))).not.toBe(0);
  });

  test('an orthogonal eraser is one MatMul (no bias) and reproduces x @ P', async () => {
    const e = randomEraser(D, 5, 2);
    const { model, record } = spliceEraser(TAGGER, e, { tensor: T });
    expect(record.nodes).toEqual(['erase/random/MatMul']);
    const out = await run(model, feeds, [record.input, T]);
    expect(maxRelErr(out[T].data as Float32Array, affine(e, out[record.input].data as Float32Array))).toBeLessThan(1e-5);
  });

  test('an identity eraser leaves every output as it was (the rewiring is consistent)', async () => {
    const identity = makeEraser('leace', D, new Float64Array(0), new Float64Array(0), new Float64Array(D).fill(0.25));
    const { model } = spliceEraser(TAGGER, identity, { tensor: T });
    const a = await run(TAGGER, feeds);
    const b = await run(model, feeds);
    for (const o of ['pos_logits', 'ner_logits']) {
      const x = a[o].data as Float32Array;
      const y = b[o].data as Float32Array;
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i] - y[i]));
      expect(err).toBeLessThan(1e-5);
    }
  });

  test('a second eraser at the same tensor is refused unless replacing; removal restores the bytes', () => {
    const before = serializeModel(TAGGER.proto);
    const first = spliceEraser(TAGGER, leace, { tensor: T, fit: { label: 'pos' } });
    expect(serializeModel(TAGGER.proto).equals(before)).toBe(true); // the input is not modified
    expect(() => spliceEraser(first.model, randomEraser(D, 2), { tensor: T })).toThrow(`models/tiny-tagger.onnx: tensor '${T}' already has a leace eraser (erase/leace/MatMul, erase/leace/Add); pass --replace to fit a new one in its place`);
    const second = spliceEraser(first.model, randomEraser(D, 2), { tensor: T, replace: true });
    expect(second.replaced?.method).toBe('leace');
    expect(readErasers(second.model.proto).map((r) => r.method)).toEqual(['random']);
    expect(second.model.proto.graph?.node?.length).toBe((TAGGER.proto.graph?.node?.length ?? 0) + 1);
    expect(second.model.proto.graph?.initializer?.map((t) => t.name).filter((n) => n?.startsWith('erase/'))).toEqual(['erase/random/P']);
    const removed = removeEraser(second.model, T);
    expect(removed.removed.method).toBe('random');
    expect(serializeModel(removed.model.proto).equals(before)).toBe(true);
  });

  test('metadata_props records the eraser; training keeps its matrices frozen', () => {
    const { model } = spliceEraser(TAGGER, leace, { tensor: T, fit: { label: 'pos', data: 'd.jsonl', dataSha256: 'ab', rows: 400, classes: 3 } });
    const meta = (model.proto.metadata_props ?? []).find((m) => m.key === 'grl-onnx.erasers');
    const recs = JSON.parse(meta?.value ?? '[]');
    expect(recs).toEqual([expect.objectContaining({ method: 'leace', tensor: T, rank: 2, fit: { label: 'pos', data: 'd.jsonl', dataSha256: 'ab', rows: 400, classes: 3 } })]);
    const tg = buildTrainingGraph(model, { losses: [{ head: 'pos' }] });
    const p = tg.params.find((x) => x.name === 'erase/leace/P');
    expect(p?.trainable ?? false).toBe(false);
    expect(tg.params.filter((x) => x.trainable).length).toBeGreaterThan(10);
  });

  test('bad tensors: unknown, an initializer, the wrong rank, the wrong width', () => {
    expect(() => spliceEraser(TAGGER, leace, { tensor: 'nope' })).toThrow("models/tiny-tagger.onnx: no tensor 'nope' in the graph");
    const init = TAGGER.proto.graph?.initializer?.[0].name as string;
    expect(() => spliceEraser(TAGGER, leace, { tensor: init })).toThrow(`tensor '${init}' is an initializer (a weight); erase at an activation`);
    expect(() => spliceEraser(TAGGER, randomLeace(16, 2), { tensor: T })).toThrow(`tensor '${T}' has 128 features but the eraser was fit on 16`);
    expect(() => spliceEraser(TAGGER, leace, { tensor: 'input_ids' })).toThrow("tensor 'input_ids' is not float32");
    const scores = TAGGER.proto.graph?.node?.find((n) => n.op_type === 'Softmax')?.output?.[0] as string;
    expect(() => spliceEraser(TAGGER, leace, { tensor: scores })).toThrow(`models/tiny-tagger.onnx: tensor '${scores}' has rank 4; an eraser needs [rows, dim] or [batch, seq, dim]`);
  });
});

/** features [N, 4] → MatMul → Tanh → last_hidden_state (an output) → MatMul → score (another output). */
function encoderOnly(): ModelProto {
  const rng = new Rng(5);
  const w = (name: string) => float32Tensor(name, [4, 4], Array.from({ length: 16 }, () => gaussian(rng)));
  const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'N' }, { dim_value: 4 }] } } } });
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'enc',
      input: [vi('features')],
      output: [vi('last_hidden_state'), vi('score')],
      initializer: [w('w1'), w('w2')],
      node: [
        { name: '/enc/MatMul', op_type: 'MatMul', input: ['features', 'w1'], output: ['h'] },
        { name: '/enc/Tanh', op_type: 'Tanh', input: ['h'], output: ['last_hidden_state'] },
        { name: '/score/MatMul', op_type: 'MatMul', input: ['last_hidden_state', 'w2'], output: ['score'] },
      ],
    },
  };
}

describe('spliceEraser on [N, d] tensors', () => {
  const model = modelFromProto(encoderOnly(), 'enc.onnx');
  const x = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i));
  const feeds = { features: new ort.Tensor('float32', x, [5, 4]) };
  const e = randomLeace(4, 3);

  test('at a graph output: the output keeps its name and is erased, and its consumer reads the erased value', async () => {
    const { model: m, record } = spliceEraser(model, e, { tensor: 'last_hidden_state' });
    expect(record.input).toBe('last_hidden_state/before_erase');
    const out = await run(m, feeds, [record.input]);
    const want = affine(e, out[record.input].data as Float32Array);
    expect(maxRelErr(out.last_hidden_state.data as Float32Array, want)).toBeLessThan(1e-6);
    const w2 = tensorToFloat32(m.proto.graph?.initializer?.find((t) => t.name === 'w2') as TensorProto);
    const score = out.score.data as Float32Array;
    for (let r = 0; r < 5; r++) for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let i = 0; i < 4; i++) s += (out.last_hidden_state.data as Float32Array)[r * 4 + i] * w2[i * 4 + j];
      expect(score[r * 4 + j]).toBeCloseTo(s, 5);
    }
  });

  test('at a graph input: consumers are rewired to the eraser output', async () => {
    const { model: m, record } = spliceEraser(model, e, { tensor: 'features' });
    expect(record).toMatchObject({ input: 'features', output: 'features/erase/leace' });
    const out = await run(m, feeds, [record.output]);
    expect(maxRelErr(out[record.output].data as Float32Array, affine(e, x))).toBeLessThan(1e-6);
    const back = removeEraser(m, 'features').model;
    expect(serializeModel(back.proto).equals(serializeModel(model.proto))).toBe(true);
  });

  test('removeErasers: at a graph input and a graph output together, all or one, back to the model byte for byte', () => {
    const one = spliceEraser(model, e, { tensor: 'features' }).model;
    const two = spliceEraser(one, randomLeace(4, 1), { tensor: 'last_hidden_state' }).model;
    const all = removeErasers(two);
    expect(all.removed.map((r) => r.tensor)).toEqual(['features', 'last_hidden_state']);
    expect(serializeModel(all.model.proto).equals(serializeModel(model.proto))).toBe(true);
    const outer = removeErasers(two, 'last_hidden_state/before_erase');
    expect(serializeModel(outer.model.proto).equals(serializeModel(one.proto))).toBe(true);
    expect(two.proto.graph?.node?.length).toBe((model.proto.graph?.node?.length ?? 0) + 4);
    expect(() => removeErasers(two, 'w2')).toThrow("enc.onnx: no eraser at tensor or node 'w2'; the model has leace at 'features', leace at 'last_hidden_state'");
    expect(() => removeErasers(model)).toThrow('enc.onnx: the model has no eraser (no grl-onnx.erasers metadata); there is nothing to remove');
  });
});
