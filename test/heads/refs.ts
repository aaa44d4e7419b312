// Test helpers for the PyTorch references of added heads (test/fixtures/heads-mini.ref.json,
// mlm-mini.ref.json, format of test/fixtures/reference.ts): feeds for the reference batch and
// the parameters, a training-graph run, and the gradient comparison of test/grad/reference.test.ts.
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { serializeModel, Model } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import type { TrainingGraph } from '../../src/grad/training';
import type { RefCase, Reference } from '../fixtures/reference';
import { ROOT } from './helpers';

export type Feeds = Record<string, ort.Tensor>;

export function loadRef(name: string): Reference {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', `${name}.ref.json`), 'utf8')) as Reference;
}

export const i64 = (t: { dims: number[]; data: number[] }) => new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.dims);

export function batchFeeds(ref: Reference, tg: TrainingGraph): Feeds {
  const feeds: Feeds = {};
  for (const [name, x] of Object.entries(ref.inputs)) feeds[name] = i64(x);
  for (const h of tg.heads) {
    const rh = ref.heads.find((x) => x.output === h.output);
    if (!rh) throw new Error(`no reference labels for ${h.output}`);
    feeds[h.labelInput] = i64(rh.labels);
  }
  return feeds;
}

export function paramFeeds(model: Model, tg: TrainingGraph): Feeds {
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const feeds: Feeds = {};
  for (const p of tg.params) if (p.trainable) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)!), p.dims);
  return feeds;
}

/** |g − ref| ≤ 1e-4 · max(max|ref of that tensor|, 1e-3 · max|ref over the model|), for every parameter. */
export function gradientMismatches(c: RefCase, got: Map<string, ArrayLike<number>>): string[] {
  const refs = Object.entries(c.gradients);
  const modelMax = Math.max(...refs.map(([, g]) => Math.max(...g.data.map(Math.abs))));
  const bad: string[] = [];
  for (const [name, g] of refs) {
    const mine = got.get(name);
    if (!mine || mine.length !== g.data.length) { bad.push(`${name}: ${mine ? `${mine.length} values` : 'no gradient'}`); continue; }
    const tol = 1e-4 * Math.max(Math.max(...g.data.map(Math.abs)), 1e-3 * modelMax);
    let worst = 0;
    for (let k = 0; k < g.data.length; k++) worst = Math.max(worst, Math.abs(mine[k] - g.data[k]));
    if (!(worst <= tol)) bad.push(`${name}: max |g - ref| = ${worst.toExponential(3)} > ${tol.toExponential(3)}`);
  }
  return bad;
}

export async function runGraph(tg: TrainingGraph, feeds: Feeds): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(serializeModel(tg.training));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

