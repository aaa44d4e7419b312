// Test helpers: run a tagger fixture's training graph once on a random padded batch
// (B=3, T=7, vocab 128, 17 pos classes) with the model's own weights as the parameters.
import * as ort from 'onnxruntime-node';
import { Model, serializeModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import type { TrainingGraph } from '../../src/grad/training';
import { rng } from './build';

export async function runTaggerTraining(model: Model, tg: TrainingGraph, seed: number, B = 3, T = 7): Promise<Record<string, Float32Array>> {
  const r = rng(seed);
  const ints = (f: () => number) => new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => BigInt(f())), [B, T]);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: ints(() => Math.floor(r() * 128)),
    attention_mask: ints(() => (r() < 0.85 ? 1 : 0)),
    token_type_ids: ints(() => (r() < 0.5 ? 1 : 0)),
    pos: ints(() => Math.floor(r() * 17)),
  };
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name, t]));
  for (const p of tg.params) if (p.trainable) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)!), p.dims);
  const s = await ort.InferenceSession.create(serializeModel(tg.training));
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

/**
 * Two training graphs of the same model give the same loss and every parameter gradient
 * to 1e-4 of that gradient's largest value (a zero true gradient, like an attention key
 * bias's, leaves only float noise, hence the small absolute floor).
 */
export async function expectSameTraining(model: Model, a: TrainingGraph, b: TrainingGraph, seed: number): Promise<void> {
  const ra = await runTaggerTraining(model, a, seed);
  const rb = await runTaggerTraining(model, b, seed);
  expect(ra[a.outputs.loss][0]).toBeCloseTo(rb[b.outputs.loss][0], 5);
  expect(Object.keys(a.outputs.grads)).toEqual(Object.keys(b.outputs.grads));
  for (const p of Object.keys(b.outputs.grads)) {
    const ga = ra[a.outputs.grads[p]];
    const gb = rb[b.outputs.grads[p]];
    const scale = Math.max(...Array.from(gb, Math.abs), 1e-6);
    let worst = 0;
    for (let k = 0; k < gb.length; k++) worst = Math.max(worst, Math.abs(ga[k] - gb[k]));
    expect([p, worst <= 1e-4 * scale + 1e-6]).toEqual([p, true]);
  }
}
