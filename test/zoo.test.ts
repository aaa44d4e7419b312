// The fixture zoo (models/zoo/, scripts/export_zoo.py): RoBERTa, DistilBERT,
// ALBERT, ELECTRA, T5-encoder and Llama-style exports. Each runs in
// onnxruntime-node with torch's recorded outputs, patches with bit-identical
// outputs, and has every rank known statically, so `inspect` reports no
// blocker before training. Gradients and the one-step SGD update against
// PyTorch are in test/grad/reference.test.ts and test/trainer/trainer.test.ts.
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../src/onnx/io';
import { ModelProto } from '../src/onnx/proto';
import { detectHeads } from '../src/patch/heads';
import { patchModel } from '../src/patch/patch';
import { inspectModel } from '../src/inspect/inspect';
import { formatInspectReport } from '../src/inspect/format';
import { observeUnknownRanks } from '../src/onnx/shapes';
import { REPO_ROOT, Reference, ZOO_ENCODERS, ZOO_NAMES, loadReference, modelPath, referenceFeeds, zooModelOf } from './fixtures/reference';
import { expectSameOutputs, maxAbsDiff, runOrt } from './helpers/models';

const TOL = 1e-4;

function nodeOutputCount(m: Model): number {
  return (m.proto.graph?.node ?? []).flatMap((n) => n.output ?? []).filter((o) => o).length;
}

describe.each(ZOO_NAMES.map((n) => [n]))('%s', (name) => {
  let model: Model;
  let ref: Reference;
  beforeAll(() => {
    model = loadModel(modelPath(name));
    ref = loadReference(name);
  });

  it('is small, and its reference is this model', () => {
    expect(fs.statSync(modelPath(name)).size).toBeLessThan(200_000);
    expect(ref.model).toBe(`models/${name}.onnx`);
    expect(ref.generator).toBe('scripts/export_zoo.py');
    expect(ref.heads.map((h) => h.head)[0]).toBe('pos');
    expect(ref.heads[0].level).toBe('token');
  });

  it("matches torch's forward outputs on the padded B=3, T=7 batch", async () => {
    const s = await ort.InferenceSession.create(serializeModel(model));
    const out = await s.run(referenceFeeds(ref));
    await s.release();
    for (const [k, want] of Object.entries(ref.outputs)) {
      expect(out[k].dims).toEqual(want.dims);
      expect(maxAbsDiff(out[k].data as Float32Array, want.data)).toBeLessThanOrEqual(TOL);
    }
  });

  it('has both heads detected, the GRL reference case at the pos head\'s splice point', () => {
    const heads = detectHeads(model);
    expect(heads.map((h) => h.output).sort()).toEqual(ref.heads.map((h) => h.output).sort());
    expect(heads.find((h) => h.name === 'pos')?.spliceTensor).toBe(ref.cases.grl.grl?.at);
  });

  it('patches every head with bit-identical onnxruntime outputs', async () => {
    const before = serializeModel(model);
    const feeds = referenceFeeds(ref);
    for (const h of ref.heads) {
      const { model: patched, warnings } = patchModel(model, { heads: [{ name: h.head, lambda: 0.7 }] });
      expect(warnings).toEqual([]);
      for (const level of ['disabled', 'all'] as const) expectSameOutputs(await runOrt(serializeModel(patched), feeds, level), await runOrt(before, feeds, level));
    }
  });

  it('inspect: every rank known statically, every op on a gradient path has a rule', async () => {
    const observed = await observeUnknownRanks(model);
    expect(observed).toEqual({ hints: new Map(), asked: 0 }); // no onnxruntime run needed
    const r = inspectModel(model, observed);
    expect(r.ranks).toEqual({ static: nodeOutputCount(model), onnxruntime: 0, unknown: 0, blocking: [] });
    expect(r.missingGradientRules).toEqual([]);
    const text = formatInspectReport(r);
    expect(text).toContain(`  ranks: ${nodeOutputCount(model).toLocaleString('en-US')} static\n`);
    expect(text).not.toContain('training would fail');
  });
});

describe.each(ZOO_ENCODERS.map((f) => [f]))('encoder-only %s', (family) => {
  const file = path.join(REPO_ROOT, 'models', 'zoo', `${family}-encoder.onnx`);
  const full = zooModelOf(family);

  it('outputs last_hidden_state, the trunk tensor of the two-head model, with every rank known', async () => {
    const enc = loadModel(file);
    expect(fs.statSync(file).size).toBeLessThan(200_000);
    expect((enc.proto.graph?.output ?? []).map((o) => o.name)).toEqual(['last_hidden_state']);
    expect(inspectModel(enc).ranks).toEqual({ static: nodeOutputCount(enc), onnxruntime: 0, unknown: 0, blocking: [] });
    // The two-head model with its trunk output exposed gives the same hidden states.
    const ref = loadReference(full);
    const at = ref.cases.grl.grl!.at;
    const twoHead = loadModel(modelPath(full)).proto;
    const exposed: ModelProto = { ...twoHead, graph: { ...twoHead.graph, output: [...(twoHead.graph?.output ?? []), { name: at }] } };
    const feeds = referenceFeeds(ref);
    const [a, b] = [await runOrt(serializeModel(enc.proto), feeds, 'disabled'), await runOrt(serializeModel(exposed), feeds, 'disabled')];
    const [x, y] = [new Float32Array(a.last_hidden_state.buffer), new Float32Array(b[at].buffer)];
    expect(x.length).toBe(3 * 7 * 32);
    expect(maxAbsDiff(x, y)).toBeLessThanOrEqual(1e-6);
  });
});
