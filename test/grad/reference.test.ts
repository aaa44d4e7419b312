// The training graph of every fixture model against PyTorch autograd
// (test/fixtures/*.ref.json): every parameter gradient, the plain case and the
// GRL case, at the recorded (3, 7) batch and, through the per-head graphs, at
// the shapes (1, 7) and (2, 5), which must add up to the same full-batch gradient.
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { patchModel } from '../../src/patch/patch';
import { buildTrainingGraph, TrainingGraph } from '../../src/grad/training';
import { FIXTURE_NAMES, ZOO_NAMES, FixtureName, RefCase, Reference, RefTensor, loadReference, modelPath } from '../fixtures/reference';

type Feeds = Record<string, ort.Tensor>;

/** Rows [r0, r1) and the first `t` positions of a [B, T] reference tensor. */
function crop(x: RefTensor, r0: number, r1: number, t: number): RefTensor {
  const [, T] = x.dims;
  const data: number[] = [];
  for (let r = r0; r < r1; r++) data.push(...x.data.slice(r * T, r * T + t));
  return { dims: [r1 - r0, t], data };
}

function int64(t: RefTensor): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.dims);
}

function caseModel(model: Model, c: RefCase): Model {
  if (!c.grl) return model;
  return patchModel(model, { heads: [{ name: c.grl.head, lambda: c.grl.lambda }], at: c.grl.at }).model;
}

function feedsFor(ref: Reference, tg: TrainingGraph, model: Model, c: RefCase, rows: [number, number, number]): Feeds {
  const [r0, r1, t] = rows;
  const feeds: Feeds = {};
  for (const [name, x] of Object.entries(ref.inputs)) feeds[name] = int64(crop(x, r0, r1, t));
  for (const h of tg.heads) {
    const rh = ref.heads.find((x) => x.head === h.head || x.output === h.output);
    if (!rh) throw new Error(`no reference labels for head ${h.head}`);
    const labels = rh.labels;
    feeds[h.labelInput] = int64(rh.level === 'token' ? crop(labels, r0, r1, t) : { dims: [r1 - r0], data: labels.data.slice(r0, r1) });
  }
  for (const l of tg.lambdas) feeds[l.input] = new ort.Tensor('float32', Float32Array.of(c.grl?.lambda ?? l.default), []);
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const p of tg.params) if (p.trainable) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)!), p.dims);
  return feeds;
}

async function run(tg: TrainingGraph, feeds: Feeds): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(serializeModel(tg.training), { graphOptimizationLevel: 'all' });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** |g − ref| ≤ 1e-4 · max(max|ref of that tensor|, 1e-3 · max|ref over the model|), for every parameter. */
function expectGradientsMatch(c: RefCase, got: Map<string, Float32Array>, what: string): void {
  const refs = Object.entries(c.gradients);
  const modelMax = Math.max(...refs.map(([, g]) => Math.max(...g.data.map(Math.abs))));
  const bad: string[] = [];
  for (const [name, g] of refs) {
    const mine = got.get(name);
    if (!mine) { bad.push(`${name}: no gradient`); continue; }
    if (mine.length !== g.data.length) { bad.push(`${name}: ${mine.length} values, reference has ${g.data.length}`); continue; }
    const tol = 1e-4 * Math.max(Math.max(...g.data.map(Math.abs)), 1e-3 * modelMax);
    let worst = 0;
    for (let k = 0; k < mine.length; k++) worst = Math.max(worst, Math.abs(mine[k] - g.data[k]));
    if (!(worst <= tol)) bad.push(`${name}: max |g - ref| = ${worst.toExponential(3)} > ${tol.toExponential(3)}`);
  }
  if (bad.length) throw new Error(`${what}: ${bad.length} of ${refs.length} gradients differ:\n  ${bad.join('\n  ')}`);
}

describe.each([...FIXTURE_NAMES, ...ZOO_NAMES].map((n) => [n]))('%s against PyTorch', (name: FixtureName) => {
  const ref = loadReference(name);
  const model = loadModel(modelPath(name));

  describe.each([['plain'], ['grl']] as const)('%s case', (which) => {
    const c = ref.cases[which];

    it('matches every parameter gradient and the losses at (3, 7)', async () => {
      const m = caseModel(model, c);
      const tg = buildTrainingGraph(m, { losses: ref.heads.map((h) => ({ head: h.head, weight: h.weight })) });
      // Every parameter the model has is trainable and has a reference.
      expect(tg.params.filter((p) => p.trainable).map((p) => p.name).sort()).toEqual(Object.keys(c.gradients).sort());
      expect(tg.lambdas.length).toBe(c.grl ? 1 : 0);
      const out = await run(tg, feedsFor(ref, tg, m, c, [0, 3, 7]));
      expect((out[tg.outputs.loss].data as Float32Array)[0]).toBeCloseTo(c.total_loss, 5);
      for (const h of tg.heads) expect((out[tg.outputs.headLoss[h.head]].data as Float32Array)[0]).toBeCloseTo(c.losses[h.output], 5);
      const got = new Map(Object.entries(tg.outputs.grads).map(([p, g]) => [p, out[g].data as Float32Array]));
      expectGradientsMatch(c, got, `${name} ${which}`);
    });

    it('serves other shapes: per-head graphs at (1, 7) and (2, 5) add up to the reference', async () => {
      const m = caseModel(model, c);
      const total = new Map<string, Float32Array>();
      for (const h of ref.heads) {
        const tg = buildTrainingGraph(m, { losses: [{ head: h.head }] });
        // Σ over parts of count_part · grad_part = count_full · grad_full for a mean loss.
        const parts: [number, number, number][] = [[0, 1, 7], [1, 3, 5]];
        let countFull = 0;
        const sum = new Map<string, Float32Array>();
        for (const part of parts) {
          const out = await run(tg, feedsFor(ref, tg, m, c, part));
          const count = (out[tg.outputs.count[h.head]].data as Float32Array)[0];
          countFull += count;
          for (const [p, g] of Object.entries(tg.outputs.grads)) {
            const gd = out[g].data as Float32Array;
            const acc = sum.get(p) ?? new Float32Array(gd.length);
            for (let k = 0; k < gd.length; k++) acc[k] += count * gd[k];
            sum.set(p, acc);
          }
        }
        for (const [p, acc] of sum) {
          const t = total.get(p) ?? new Float32Array(acc.length);
          for (let k = 0; k < acc.length; k++) t[k] += (h.weight * acc[k]) / countFull;
          total.set(p, t);
        }
      }
      expectGradientsMatch(c, total, `${name} ${which} (split batch)`);
    });
  });
});
