// generateArtifacts with the real training-graph builder on a fixture model, then
// a TrainingSession over the folder: one SGD step with lr = 1 must move every
// parameter by exactly −(PyTorch's gradient), in the plain and the GRL case.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Model, loadModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { patchModel } from '../../src/patch/patch';
import { ARTIFACT_FILES, generateArtifacts, readArtifactsMetadata } from '../../src/train/artifacts';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { TrainingSession } from '../../src/train/session';
import { RefCase, int64Input, loadReference, modelPath, referenceFeeds } from '../fixtures/reference';

const ref = loadReference('classifier');
const base = loadModel(modelPath('classifier'));
const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-artifacts-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function caseModel(c: RefCase): Model {
  return c.grl ? patchModel(base, { heads: [{ name: c.grl.head, lambda: c.grl.lambda }], at: c.grl.at }).model : base;
}

function feeds(): Record<string, ort.Tensor> {
  const f = referenceFeeds(ref);
  for (const h of ref.heads) f[h.head] = int64Input(h.labels);
  return f;
}

describe('generateArtifacts + TrainingSession on the classifier fixture', () => {
  it('writes ORT\'s layout, a checkpoint of the original weights and artifacts.json', () => {
    const dir = tmp();
    const meta = generateArtifacts(base, { losses: ref.heads.map((h) => ({ head: h.head, weight: h.weight })), freeze: ['*embeddings*'], optimizer: 'adamw', learningRate: 3e-4 }, dir);
    expect(fs.readdirSync(dir).sort()).toEqual(Object.values(ARTIFACT_FILES).sort());
    expect(readArtifactsMetadata(dir)).toEqual(meta);
    const ckpt = loadCheckpoint(path.join(dir, ARTIFACT_FILES.checkpoint));
    expect(ckpt.trainable.map((t) => t.name)).toEqual(meta.params.filter((p) => p.trainable).map((p) => p.name));
    expect(ckpt.frozen.map((t) => t.name)).toEqual(meta.params.filter((p) => !p.trainable).map((p) => p.name));
    expect(ckpt.frozen.length).toBeGreaterThan(0);
    expect(ckpt.frozen.every((t) => /embeddings/.test(t.name))).toBe(true);
    const inits = new Map((base.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const t of [...ckpt.trainable, ...ckpt.frozen]) expect(Array.from(t.data)).toEqual(Array.from(tensorToFloat32(inits.get(t.name)!)));
    expect(ckpt.optimizerGroups).toEqual([]);
    expect(ckpt.properties.strings.optimizer).toBe('adamw');
  });

  it.each([['plain'], ['grl']] as const)('%s case: one SGD step with lr = 1 is θ − ∇θ(PyTorch)', async (which) => {
    const c = ref.cases[which];
    const model = caseModel(c);
    const dir = tmp();
    generateArtifacts(model, { losses: ref.heads.map((h) => ({ head: h.head, weight: h.weight })), optimizer: 'sgd', learningRate: 1 }, dir);
    const s = await TrainingSession.create(dir);
    expect(Object.keys(s.getLambdas())).toEqual(c.grl ? [c.grl.head] : []);
    const out = await s.runTrainStep(feeds());
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(c.total_loss, 5);
    await s.runOptimizerStep();
    const after = (await s.getContiguousParameters(true)).data as Float32Array;
    const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    const grads = Object.values(c.gradients);
    const modelMax = Math.max(...grads.map((g) => Math.max(...g.data.map(Math.abs))));
    const bad: string[] = [];
    expect(s.parameterLayout.map((p) => p.name).sort()).toEqual(Object.keys(c.gradients).sort());
    for (const slot of s.parameterLayout) {
      const g = c.gradients[slot.name];
      const before = tensorToFloat32(inits.get(slot.name)!);
      const tol = 1e-4 * Math.max(Math.max(...g.data.map(Math.abs)), 1e-3 * modelMax);
      let worst = 0;
      for (let k = 0; k < slot.size; k++) worst = Math.max(worst, Math.abs(before[k] - after[slot.offset + k] - g.data[k]));
      // θ − (θ − g) in float32 loses up to one ulp of θ on top of the gradient tolerance.
      const ulp = Math.max(...Array.from(before, Math.abs)) * 2 ** -23;
      if (!(worst <= tol + ulp)) bad.push(`${slot.name}: ${worst.toExponential(3)} > ${(tol + ulp).toExponential(3)}`);
    }
    expect(bad).toEqual([]);
    // The exported model is the original graph (GRL nodes included) with the new weights.
    const exported = path.join(dir, 'model.onnx');
    await s.exportModelForInferencing(exported);
    const m = loadModel(exported);
    // Same names (saveModel streams big tensors last, so compare as sets).
    expect((m.proto.graph?.initializer ?? []).map((t) => t.name).sort()).toEqual((model.proto.graph?.initializer ?? []).map((t) => t.name).sort());
    expect((m.proto.graph?.node ?? []).map((n) => n.op_type)).toEqual((model.proto.graph?.node ?? []).map((n) => n.op_type));
    const inference = await ort.InferenceSession.create(exported);
    const logits = await inference.run(referenceFeeds(ref));
    expect(Object.keys(logits).sort()).toEqual(Object.keys(ref.outputs).sort());
    // ...and computes what the eval graph computes with the session's current weights.
    const ev = await s.runEvalStep(feeds());
    for (const name of Object.keys(ref.outputs)) {
      const a = logits[name].data as Float32Array;
      const b = ev[name].data as Float32Array;
      expect(a.length).toBe(b.length);
      expect(Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k])))).toBeLessThan(1e-4);
    }
    await inference.release();
    await s.release();
  });
});
