// `heads add` on the encoder-only exports of the fixture zoo (RoBERTa, DistilBERT,
// ALBERT, ELECTRA, T5 encoder, Llama-style; models/zoo/<family>-encoder.onnx):
// the encoder's output stays bit-identical, the new token head computes
// hidden @ W + b, every rank stays known, and the training graph (a GRL on the
// token head, a mean-pooled sequence head) runs with the loss cross-entropy gives.
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { addHeads } from '../../src/heads/add';
import { inspectModel } from '../../src/inspect/inspect';
import { buildTrainingGraph } from '../../src/grad/training';
import { REPO_ROOT, ZOO_ENCODERS, loadReference, referenceFeeds, zooModelOf } from '../fixtures/reference';
import { affine, init, maxRelError, runFloats } from './helpers';

const D = 32;

/** mean over labels != -100 of logsumexp(row) - row[label], in float64. */
function crossEntropy(logits: Float32Array, C: number, labels: number[]): number {
  let sum = 0;
  let n = 0;
  labels.forEach((y, r) => {
    if (y === -100) return;
    const row = Array.from(logits.subarray(r * C, (r + 1) * C));
    const m = Math.max(...row);
    sum += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[y];
    n++;
  });
  return sum / n;
}

describe.each(ZOO_ENCODERS.map((f) => [f]))('heads add on the %s encoder', (family) => {
  const encoder = loadModel(path.join(REPO_ROOT, 'models', 'zoo', `${family}-encoder.onnx`));
  const ref = loadReference(zooModelOf(family));
  const feeds = referenceFeeds(ref);
  const [B, T] = ref.inputs.input_ids.dims;
  const posLabels = ref.heads[0].labels.data;
  const { model, heads, warnings } = addHeads(encoder, [
    { name: 'pos', classes: 7, adversarial: 0.5 },
    { name: 'cls', classes: 3, kind: 'seq', pool: 'mean' },
  ], { seed: 2 });

  it('keeps the encoder output bit-identical; the token head is hidden @ W + b', async () => {
    expect(warnings).toEqual([]);
    expect(heads.map((h) => [h.name, h.output, h.kind])).toEqual([['pos', 'pos_logits', 'token'], ['cls', 'cls_logits', 'seq']]);
    const [base, out] = [await runFloats(encoder, feeds), await runFloats(model, feeds)];
    expect(Buffer.from(out.last_hidden_state.data.buffer).equals(Buffer.from(base.last_hidden_state.data.buffer))).toBe(true);
    expect(out.pos_logits.dims).toEqual([B, T, 7]);
    expect(out.cls_logits.dims).toEqual([B, 3]);
    const want = affine(base.last_hidden_state.data, B * T, D, init(model, 'heads.pos.weight'), 7, init(model, 'heads.pos.bias'));
    expect(maxRelError(out.pos_logits.data, want)).toBeLessThan(1e-6);
  });

  it('keeps every rank known, with no blocker on a gradient path', () => {
    const r = inspectModel(model).ranks;
    expect([r.unknown, r.onnxruntime, r.blocking]).toEqual([0, 0, []]);
    expect(r.static).toBe((model.proto.graph?.node ?? []).flatMap((n) => n.output ?? []).filter((o) => o).length);
  });

  it('trains: the training graph runs, its pos loss is the cross-entropy of the logits, every parameter gets a gradient', async () => {
    const tg = buildTrainingGraph(model, { losses: [{ head: 'pos' }, { head: 'cls', weight: 0.5 }] });
    const floats = (model.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1 && (t.dims?.length ?? 0) >= 1);
    expect(tg.params.filter((p) => p.trainable).map((p) => p.name).sort()).toEqual(floats.map((t) => t.name).sort());
    const f: Record<string, ort.Tensor> = { ...feeds };
    const labelsFor = (head: string) => tg.heads.find((h) => h.head === head)!.labelInput;
    f[labelsFor('pos')] = new ort.Tensor('int64', BigInt64Array.from(posLabels, BigInt), [B, T]);
    f[labelsFor('cls')] = new ort.Tensor('int64', BigInt64Array.of(2n, 0n, 1n), [B]);
    for (const l of tg.lambdas) f[l.input] = new ort.Tensor('float32', Float32Array.of(0.5), []);
    for (const t of floats) f[t.name!] = new ort.Tensor('float32', tensorToFloat32(t, model.baseDir), tg.params.find((p) => p.name === t.name)!.dims);
    const s = await ort.InferenceSession.create(serializeModel(tg.training));
    const out = await s.run(f);
    await s.release();
    const logits = (await runFloats(model, feeds)).pos_logits.data;
    expect((out[tg.outputs.headLoss.pos].data as Float32Array)[0]).toBeCloseTo(crossEntropy(logits, 7, posLabels), 5);
    for (const [p, g] of Object.entries(tg.outputs.grads)) {
      const data = out[g].data as Float32Array;
      expect([p, data.every(Number.isFinite), data.some((v) => v !== 0)]).toEqual([p, true, true]);
    }
  });
});
