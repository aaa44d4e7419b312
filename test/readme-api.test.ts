// The README's "Programmatic API" example, run as written (examples double as tests).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, patchModel, saveModel, inspectModel, generateArtifacts, TrainingSession, train } from '../src';

const ROOT = path.join(__dirname, '..');

it('runs the README API example end to end', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-readme-'));
  const at = (f: string) => path.join(dir, f);
  const model = loadModel(path.join(ROOT, 'models', 'tiny-tagger.onnx'));
  expect(inspectModel(model).heads.map((h) => h.name)).toEqual(['pos', 'ner']);
  const { model: patched } = patchModel(model, { heads: [{ name: 'pos', lambda: 0.1 }] });
  saveModel(patched, at('patched.onnx'));
  generateArtifacts(patched, { losses: [{ head: 'pos' }, { head: 'ner', weight: 0.5 }], optimizer: 'adamw', learningRate: 1e-3 }, at('art'));
  const session = await TrainingSession.create(at('art'));
  session.registerLambdaScheduler({ kind: 'dann' }, 1000);
  session.setLambda('pos', 0.3);
  const ids = (v: number) => new ort.Tensor('int64', BigInt64Array.from({ length: 4 }, () => BigInt(v)), [1, 4]);
  const feeds = { input_ids: ids(5), attention_mask: ids(1), token_type_ids: ids(0), pos: ids(3), ner: ids(0) };
  const out = await session.runTrainStep(feeds);
  expect(Object.keys(out)).toEqual(expect.arrayContaining(['loss', 'loss.pos', 'loss.ner']));
  expect(Number.isFinite((out.loss.data as Float32Array)[0])).toBe(true);
  const before = (await session.getContiguousParameters(true)).data as Float32Array;
  const copy = Float32Array.from(before);
  expect(await session.runOptimizerStep()).toBe(true);
  const after = (await session.getContiguousParameters(true)).data as Float32Array;
  expect(after.some((v, i) => v !== copy[i])).toBe(true);
  await session.lazyResetGrad();
  await session.saveCheckpoint(at('art/checkpoint'));
  await session.exportModelForInferencing(at('trained.onnx'));
  await session.release();
  const names = (f: string) => (loadModel(f).proto.graph?.initializer ?? []).map((t) => t.name).sort();
  expect(names(at('trained.onnx'))).toEqual(names(path.join(ROOT, 'models', 'tiny-tagger.onnx')));

  const s = await train({ model: path.join(ROOT, 'models', 'tiny-tagger.onnx'), data: path.join(ROOT, 'data', 'dev.jsonl'), losses: [{ head: 'pos' }, { head: 'ner' }], heads: [{ name: 'pos', lambda: 0.1 }], lambdaSchedule: 'dann', lr: 1e-3, batchSize: 32, steps: 2, out: at('run') });
  expect(s.steps).toBe(2);
  expect(fs.existsSync(s.model)).toBe(true);
});

it('runs the README API example for an encoder: heads, corpus training, erasure', async () => {
  const { addHeads, eraseModel, readErasers } = await import('../src');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-readme-'));
  const at = (f: string) => path.join(dir, f);
  const encoder = loadModel(path.join(ROOT, 'models/encoders/bert-encoder.onnx'));
  const { model: tagger } = addHeads(encoder, [{ name: 'pos', classes: 17, adversarial: 0.1 }, { name: 'ner', classes: 7 }], { seed: 0 });
  saveModel(tagger, at('tagger.onnx'));
  const corpus = { tokenizer: path.join(ROOT, 'models/bert-base-uncased-tokenizer.json'), labels: ['pos=pos', 'ner=ner'] };
  const summary = await train({ model: at('tagger.onnx'), data: path.join(ROOT, 'data/words/dev.jsonl'), eval: path.join(ROOT, 'data/words/test.jsonl'), corpus,
    losses: [{ head: 'pos' }, { head: 'ner' }], lambdaSchedule: 'dann', lr: 1e-3, batchSize: 32, steps: 3, out: at('run') });
  expect(summary.steps).toBe(3);
  expect(summary.lastEval?.heads.pos.count).toBe(23346);
  const { model: erased } = await eraseModel(loadModel(summary.model), { data: path.join(ROOT, 'data/words/dev.jsonl'), label: 'pos', method: 'leace', corpus });
  saveModel(erased, at('erased.onnx'));
  expect(readErasers(loadModel(at('erased.onnx')).proto).map((e) => [e.method, e.tensor, e.rank])).toEqual([['leace', 'last_hidden_state', 16]]);
});
