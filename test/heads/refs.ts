// Test helpers for the PyTorch references of added heads (test/fixtures/heads-mini.ref.json,
// mlm-mini.ref.json, format of test/fixtures/reference.ts): feeds for the reference batch and
// the parameters, a training-graph run, and the gradient comparison of test/grad/reference.test.ts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { serializeModel, Model } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { buildTrainingGraph, LossOption, TrainingGraph } from '../../src/grad/training';
import { writeArtifacts } from '../../src/train/artifacts';
import { TrainingSession } from '../../src/train/session';
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


/**
 * One SGD step with lr 1 through TrainingSession (artifacts written for `losses`, row-sparse
 * gradients on as `grl-onnx train` has them): θ − θ' per trainable parameter, which is ∇θ.
 */
export async function sgdStepDelta(model: Model, losses: LossOption[], ref: Reference): Promise<{ loss: number; delta: Map<string, Float32Array> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-heads-sgd-'));
  try {
    const tg = buildTrainingGraph(model, { losses, rowSparseGradients: true });
    writeArtifacts(model, tg, { optimizer: 'sgd', learningRate: 1 }, dir);
    const s = await TrainingSession.create({ artifactsDir: dir });
    const out = await s.runTrainStep(batchFeeds(ref, tg));
    await s.runOptimizerStep();
    const after = (await s.getContiguousParameters(true)).data as Float32Array;
    const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', tensorToFloat32(t)]));
    const delta = new Map<string, Float32Array>();
    for (const slot of s.parameterLayout) {
      const before = inits.get(slot.name) as Float32Array;
      delta.set(slot.name, Float32Array.from({ length: slot.size }, (_, k) => before[k] - after[slot.offset + k]));
    }
    await s.release();
    return { loss: (out[tg.outputs.loss].data as Float32Array)[0], delta };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
