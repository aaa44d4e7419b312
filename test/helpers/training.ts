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
