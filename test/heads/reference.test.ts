// Heads added by `heads add` train like the same heads built in PyTorch
// (test/fixtures/heads-mini.ref.json, made by scripts/make-heads-references.sh):
// a token head with a GRL (λ 0.3), a mean-pooled sequence head with an MLP and a
// CLS-pooled sequence head on the mini BertModel. The heads are rebuilt here with
// the same calls and seed, so a change in initialisation fails this test too.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { addHeads } from '../../src/heads/add';
import { patchModel } from '../../src/patch/patch';
import { buildTrainingGraph, TrainingGraph } from '../../src/grad/training';
import { writeArtifacts } from '../../src/train/artifacts';
import { TrainingSession } from '../../src/train/session';
import type { RefCase, Reference } from '../fixtures/reference';
import { MINI, ROOT } from './helpers';

type Feeds = Record<string, ort.Tensor>;

export function loadRef(name: string): Reference {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', `${name}.ref.json`), 'utf8')) as Reference;
}

/** The recipe of scripts/make-heads-references.sh, through the API. */
function headsModel(): Model {
  const mini = loadModel(MINI);
  const a = addHeads(mini, [{ name: 'pos', classes: 5, adversarial: 0.3 }], { seed: 11 }).model;
  const b = addHeads(a, [{ name: 'sent', classes: 3, kind: 'seq', pool: 'mean', mlp: 8 }], { seed: 11 }).model;
  return addHeads(b, [{ name: 'topic', classes: 4, kind: 'seq', pool: 'cls' }], { seed: 11 }).model;
}

const i64 = (t: { dims: number[]; data: number[] }) => new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.dims);

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

const ref = loadRef('heads-mini');
const adversarial = headsModel();
const plain = patchModel(adversarial, { remove: true }).model;
const losses = ref.heads.map((h) => ({ head: h.head, weight: h.weight }));

describe('heads add against PyTorch (mini BertModel, 3 heads)', () => {
  it('forward: the head logits equal torch with the weights read from the ONNX file', async () => {
    const s = await ort.InferenceSession.create(serializeModel(plain));
    const feeds: Feeds = {};
    for (const [name, x] of Object.entries(ref.inputs)) feeds[name] = i64(x);
    const out = await s.run(feeds);
    await s.release();
    for (const name of ['last_hidden_state', 'pos_logits', 'sent_logits', 'topic_logits']) {
      const want = ref.outputs[name];
      expect(out[name].dims).toEqual(want.dims);
      const got = out[name].data as Float32Array;
      let worst = 0;
      for (let k = 0; k < want.data.length; k++) worst = Math.max(worst, Math.abs(got[k] - want.data[k]));
      expect(worst).toBeLessThan(1e-5);
    }
  });

  describe.each([['plain'], ['grl']] as const)('%s case', (which) => {
    const c = ref.cases[which];
    const model = which === 'grl' ? adversarial : plain;

    it('every parameter gradient and the losses', async () => {
      const tg = buildTrainingGraph(model, { losses });
      expect(tg.params.filter((p) => p.trainable).map((p) => p.name).sort()).toEqual(Object.keys(c.gradients).sort());
      expect(tg.lambdas.map((l) => [l.head, l.default])).toEqual(which === 'grl' ? [['pos', Math.fround(0.3)]] : []);
      const feeds = { ...batchFeeds(ref, tg), ...paramFeeds(model, tg) };
      for (const l of tg.lambdas) feeds[l.input] = new ort.Tensor('float32', Float32Array.of(l.default), []);
      const out = await runGraph(tg, feeds);
      expect((out[tg.outputs.loss].data as Float32Array)[0]).toBeCloseTo(c.total_loss, 5);
      for (const h of tg.heads) expect((out[tg.outputs.headLoss[h.head]].data as Float32Array)[0]).toBeCloseTo(c.losses[h.output], 5);
      const got = new Map(Object.entries(tg.outputs.grads).map(([p, g]) => [p, out[g].data as Float32Array]));
      expect(gradientMismatches(c, got)).toEqual([]);
    });
  });

  it('one SGD step (lr 1) through TrainingSession is θ − ∇θ of the GRL reference', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-heads-'));
    try {
      const tg = buildTrainingGraph(adversarial, { losses, rowSparseGradients: true });
      writeArtifacts(adversarial, tg, { optimizer: 'sgd', learningRate: 1 }, dir);
      const s = await TrainingSession.create({ artifactsDir: dir });
      const out = await s.runTrainStep(batchFeeds(ref, tg));
      expect((out[tg.outputs.loss].data as Float32Array)[0]).toBeCloseTo(ref.cases.grl.total_loss, 5);
      await s.runOptimizerStep();
      const after = (await s.getContiguousParameters(true)).data as Float32Array;
      const inits = new Map((adversarial.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', tensorToFloat32(t)]));
      const step = new Map<string, Float32Array>();
      for (const slot of s.parameterLayout) {
        const before = inits.get(slot.name)!;
        const g = new Float32Array(slot.size);
        for (let k = 0; k < slot.size; k++) g[k] = before[k] - after[slot.offset + k];
        step.set(slot.name, g);
      }
      await s.release();
      expect([...step.keys()].sort()).toEqual(Object.keys(ref.cases.grl.gradients).sort());
      expect(gradientMismatches(ref.cases.grl, step)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
