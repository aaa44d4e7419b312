// TrainingSession through the library API: a checkpoint saved mid-way through a λ
// schedule carries the schedule and λ_max, so a session created from it continues
// the schedule (the λ saved in the checkpoint is the scheduled one, near 0 early in
// a dann run, and must not become the new λ_max). Also pins the feeds the session
// binds once: a λ fed by the caller wins over the session's own.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Model } from '../../src/onnx/io';
import { writeArtifacts } from '../../src/train/artifacts';
import { loadCheckpoint, SESSION_PROPERTY } from '../../src/train/checkpoint';
import { lambdaAt, LambdaSchedule } from '../../src/train/schedules';
import { TrainingSession } from '../../src/train/session';
import { randn, rng } from '../helpers/build';
import { D, H, inferenceModel, initialWeights, trainingGraphFor } from '../train/linear-grl';

const w0 = initialWeights();
const original: Model = { proto: inferenceModel(w0), source: 'linear-grl.onnx', unknownFields: [] };
const dirs: string[] = [];

function artifacts(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-session-lambda-'));
  dirs.push(dir);
  writeArtifacts(original, trainingGraphFor(w0), { optimizer: 'sgd', learningRate: 0.1, hyperparameters: {} }, dir);
  return dir;
}

afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function feeds(seed: number): Record<string, ort.Tensor> {
  const labels = [0, 1, 2];
  return {
    x: new ort.Tensor('float32', randn(rng(seed), labels.length * D), [labels.length, D]),
    adv: new ort.Tensor('int64', BigInt64Array.from(labels, BigInt), [labels.length]),
  };
}

/** Run `steps` full steps and return the λ each train step used. */
async function lambdasOf(s: TrainingSession, steps: number): Promise<number[]> {
  const seen: number[] = [];
  for (let k = 0; k < steps; k++) {
    await s.runTrainStep(feeds(100 + s.optimizerStep));
    seen.push(s.getLambdas().adv);
    await s.runOptimizerStep();
    await s.lazyResetGrad();
  }
  return seen;
}

const dann: LambdaSchedule = { kind: 'dann' };
const TOTAL = 10;
// The artifacts' λ (the GRL's attribute) is 0.5: the λ_max of every run below.
const expected = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => Math.fround(lambdaAt(dann, 0.5, from + k, TOTAL)));

describe('TrainingSession λ schedule across a checkpoint', () => {
  it('a session created from a mid-schedule checkpoint continues the same schedule', async () => {
    const dir = artifacts();
    const a = await TrainingSession.create(dir);
    a.registerLambdaScheduler(dann, TOTAL);
    expect(await lambdasOf(a, 3)).toEqual(expected(0, 3));
    const ckpt = path.join(dir, 'mid.ckpt');
    await a.saveCheckpoint(ckpt);
    const rest = await lambdasOf(a, 3);
    await a.release();
    expect(rest).toEqual(expected(3, 6));

    const settings = JSON.parse(loadCheckpoint(ckpt).properties.strings[SESSION_PROPERTY]);
    expect(settings.lambdaMax).toEqual({ adv: 0.5 });
    expect(settings.lambdaSchedule).toEqual({ schedule: dann, totalSteps: TOTAL });
    // What the checkpoint holds as λ is the scheduled value of step 2, well below λ_max.
    expect(loadCheckpoint(ckpt).properties.floats['grl.adv.lambda']).toBeLessThan(0.5);

    // Restored without registering anything...
    const b = await TrainingSession.create({ artifactsDir: dir, checkpointState: ckpt });
    expect(b.optimizerStep).toBe(3);
    expect(await lambdasOf(b, 3)).toEqual(rest);
    await b.release();

    // ...and re-registered without λ_max, as a resuming caller would: the saved λ_max is used.
    const c = await TrainingSession.create({ artifactsDir: dir, checkpointState: ckpt });
    c.registerLambdaScheduler(dann, TOTAL);
    expect(await lambdasOf(c, 3)).toEqual(rest);
    await c.release();
  });

  it('an explicit λ_max still wins, and is what the next checkpoint saves', async () => {
    const dir = artifacts();
    const a = await TrainingSession.create(dir);
    a.registerLambdaScheduler({ kind: 'linear', warmup: 4 }, TOTAL, { adv: 0.8 });
    expect(await lambdasOf(a, 2)).toEqual([0, Math.fround(0.2)]);
    const ckpt = path.join(dir, 'linear.ckpt');
    await a.saveCheckpoint(ckpt);
    await a.release();
    expect(JSON.parse(loadCheckpoint(ckpt).properties.strings[SESSION_PROPERTY]).lambdaMax).toEqual({ adv: 0.8 });
    const b = await TrainingSession.create({ artifactsDir: dir, checkpointState: ckpt });
    expect(await lambdasOf(b, 3)).toEqual([Math.fround(0.4), Math.fround(0.6), Math.fround(0.8)]);
    b.registerLambdaScheduler({ kind: 'constant' }, TOTAL, { adv: 0.25 });
    expect(await lambdasOf(b, 1)).toEqual([0.25]);
    await b.release();
  });

  it('without a saved λ_max, registering falls back to the current λ', async () => {
    const dir = artifacts();
    const a = await TrainingSession.create(dir);
    a.setLambda('adv', 0.75);
    const ckpt = path.join(dir, 'plain.ckpt');
    await a.saveCheckpoint(ckpt);
    await a.release();
    expect(JSON.parse(loadCheckpoint(ckpt).properties.strings[SESSION_PROPERTY]).lambdaSchedule).toBeUndefined();
    const b = await TrainingSession.create({ artifactsDir: dir, checkpointState: ckpt });
    expect(await lambdasOf(b, 1)).toEqual([0.75]);
    b.registerLambdaScheduler({ kind: 'constant' }, TOTAL);
    expect(await lambdasOf(b, 1)).toEqual([0.75]);
    await b.release();
  });
});

describe('TrainingSession bound feeds', () => {
  it('a λ fed by the caller wins over the session\'s; parameters always come from the session', async () => {
    const s = await TrainingSession.create(artifacts());
    const E = async () => Array.from((await s.getContiguousParameters(true)).data as Float32Array).slice(0, D * H);
    const before = await E();
    // λ = 0 reverses nothing into the encoder: E does not move, whatever the session's λ (0.5).
    await s.runTrainStep({ ...feeds(1), 'grl.adv.lambda': new ort.Tensor('float32', Float32Array.of(0), []) });
    await s.runOptimizerStep();
    expect(await E()).toEqual(before);
    await s.lazyResetGrad();
    await s.runTrainStep(feeds(1));
    await s.runOptimizerStep();
    expect(await E()).not.toEqual(before);
    // A parameter fed by the caller is ignored: the eval graph reads the live buffers.
    const junk = new ort.Tensor('float32', new Float32Array(D * H), [D, H]);
    const withJunk = await s.runEvalStep({ ...feeds(2), E: junk });
    const plain = await s.runEvalStep(feeds(2));
    expect(Array.from(withJunk.loss.data as Float32Array)).toEqual(Array.from(plain.loss.data as Float32Array));
    await s.release();
  });
});
