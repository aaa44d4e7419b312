// Fixture models: the committed torch exports load with our model I/O, run in
// onnxruntime-node with torch's recorded forward outputs, and their reference
// files describe exactly the parameters that gradients are expected for.
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../src/onnx/io';
import { Graph } from '../src/onnx/graph';
import { DataType, toNumber } from '../src/onnx/proto';
import { tensorBytes } from '../src/onnx/tensor';
import { FIXTURE_NAMES, FixtureName, RefTensor, Reference, loadReference, modelPath, referenceFeeds } from './fixtures/reference';
import { maxAbsDiff } from './helpers/models';

const TOL = 1e-4;

/** Float initializers read by some node on the way to one of the heads' outputs. */
function floatInitializersFeeding(model: Model, outputs: string[]): Set<string> {
  const g = new Graph(model.proto.graph!);
  const found = new Set<string>();
  for (const out of outputs) {
    for (const node of g.ancestors(out)) {
      for (const i of node.input ?? []) {
        const t = g.initializer(i);
        if (t && t.data_type === DataType.FLOAT) found.add(i);
      }
    }
  }
  return found;
}

/** Rows [r] cut to their real length: tokens of `t` ([B, T, ...] or [B, ...]) for that row. */
function rowPrefix(t: RefTensor, r: number, len: number, tokenLevel: boolean): number[] {
  const rowSize = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const row = t.data.slice(r * rowSize, (r + 1) * rowSize);
  return tokenLevel ? row.slice(0, len * (rowSize / t.dims[1])) : row;
}

describe.each(FIXTURE_NAMES)('fixture %s', (name: FixtureName) => {
  let model: Model;
  let ref: Reference;
  let sess: ort.InferenceSession;

  beforeAll(async () => {
    model = loadModel(modelPath(name));
    ref = loadReference(name);
    sess = await ort.InferenceSession.create(serializeModel(model));
  });

  it('has the recorded inputs and both heads as outputs', () => {
    expect((model.proto.graph!.input ?? []).map((i) => i.name)).toEqual(Object.keys(ref.inputs));
    expect((model.proto.graph!.output ?? []).map((o) => o.name).sort()).toEqual(Object.keys(ref.outputs).sort());
    expect(ref.heads.map((h) => h.output).sort()).toEqual(Object.keys(ref.outputs).sort());
  });

  it("matches torch's forward outputs on the padded B=3, T=7 batch", async () => {
    const out = await sess.run(referenceFeeds(ref));
    for (const [k, want] of Object.entries(ref.outputs)) {
      expect(out[k].dims).toEqual(want.dims);
      expect(maxAbsDiff(out[k].data as Float32Array, want.data)).toBeLessThanOrEqual(TOL);
    }
  });

  it('runs at other batch and sequence sizes: each row alone, cut to its real length', async () => {
    const mask = ref.inputs.attention_mask;
    const T = mask.dims[1];
    for (let r = 0; r < mask.dims[0]; r++) {
      const len = mask.data.slice(r * T, (r + 1) * T).reduce((a, b) => a + b, 0);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(ref.inputs)) {
        feeds[k] = new ort.Tensor('int64', BigInt64Array.from(t.data.slice(r * T, r * T + len), (v) => BigInt(v)), [1, len]);
      }
      const out = await sess.run(feeds);
      for (const [k, want] of Object.entries(ref.outputs)) {
        const tokenLevel = want.dims.length === 3;
        expect(out[k].dims).toEqual(tokenLevel ? [1, len, want.dims[2]] : [1, want.dims[1]]);
        // Pads get -10000 in the attention mask, so real tokens must not see them at all.
        expect(maxAbsDiff(out[k].data as Float32Array, rowPrefix(want, r, len, tokenLevel))).toBeLessThanOrEqual(TOL);
      }
    }
  });

  it('has gradients for exactly the float initializers that feed the loss, in their ONNX shapes', () => {
    const g = new Graph(model.proto.graph!);
    const feeding = [...floatInitializersFeeding(model, ref.heads.map((h) => h.output))].sort();
    expect(feeding.length).toBeGreaterThan(30);
    for (const c of [ref.cases.plain, ref.cases.grl]) {
      expect(Object.keys(c.gradients).sort()).toEqual(feeding);
      for (const [init, grad] of Object.entries(c.gradients)) {
        const dims = (g.initializer(init)!.dims ?? []).map((d) => toNumber(d));
        expect([init, grad.dims]).toEqual([init, dims]);
        expect(grad.data.length).toBe(dims.reduce((a, b) => a * b, 1));
        // A transposed torch weight is only ever the B operand of a MatMul (torch's Linear on 3-D input).
        if (grad.transposed) for (const n of g.consumersOf(init)) expect([init, n.op_type, n.input![1]]).toEqual([init, 'MatMul', init]);
      }
    }
  });

  it('has no two parameters merged into one initializer (the exporter trap)', () => {
    const seen = new Map<string, string>();
    for (const t of model.proto.graph!.initializer ?? []) {
      if (t.data_type !== DataType.FLOAT) continue;
      const key = Buffer.from(tensorBytes(t, model.baseDir)).toString('base64');
      expect([t.name, seen.get(key)]).toEqual([t.name, undefined]);
      seen.set(key, t.name!);
    }
    const params = new Set(Object.values(ref.cases.plain.gradients).map((gr) => gr.param));
    expect(params.size).toBe(Object.keys(ref.cases.plain.gradients).length);
  });

  it('records a GRL case on the first head, at a tensor upstream of that head', () => {
    const grl = ref.cases.grl.grl!;
    expect(ref.cases.plain.grl).toBeNull();
    expect(grl.output).toBe(ref.heads[0].output);
    expect(grl.lambda).toBe(0.7);
    const g = new Graph(model.proto.graph!);
    expect(g.producer(grl.at)).toBeDefined();
    const upstream = new Set([...g.ancestors(grl.output)].flatMap((n) => n.output ?? []));
    expect(upstream.has(grl.at)).toBe(true);
    // The forward is unchanged by a GRL, so both cases share the total loss.
    expect(ref.cases.grl.total_loss).toBe(ref.cases.plain.total_loss);
    const weighted = ref.heads.reduce((s, h) => s + h.weight * ref.cases.plain.losses[h.output], 0);
    expect(Math.abs(weighted - ref.cases.plain.total_loss)).toBeLessThanOrEqual(1e-5 * Math.abs(weighted));
  });
});
