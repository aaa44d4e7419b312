// `--layout ort` against ONNX Runtime's own training runtime (onnxruntime-web 1.19.2's training
// wasm, test/helpers/ort-training.ts): ORT opens our artifact set, and ORT and grl-onnx's
// TrainingSession (which rewrites the ORT nodes away) train the same way, step by step, on a
// tagger fixture with a GRL whose λ is fed. Checkpoints move both ways.
//
// Agreement: losses to 1e-5 relative; parameters to 1e-6 absolute wherever the step-1
// gradient's magnitude is above 1e-6. Where the true gradient is about 0 (attention key
// biases, padding rows of embeddings) both runtimes see only float rounding noise of ~1e-9,
// and AdamW divides it by √v ≈ its own size, so an lr-sized (1e-3) step in a noise-given
// direction: those elements say nothing about agreement and are left out (and counted).
//
// ORT runs in a child process per job (test/helpers/ort-training.ts), which also holds the
// workarounds for onnxruntime-web 1.19.2's pitfalls (positional feeds, getContiguousParameters).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import { createOrtSession } from '../../src/onnx/ort';
import { DataType } from '../../src/onnx/proto';
import { attrFloat, attrInt } from '../../src/onnx/attrs';
import { patchModel } from '../../src/patch/patch';
import { ArtifactOptions, generateArtifacts } from '../../src/train/artifacts';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { ACCUMULATION_BUFFER, ACCUMULATION_OUT, LAZY_RESET_GRAD, fromOrtTrainingModel } from '../../src/train/layouts/ort';
import { TrainingSession } from '../../src/train/session';
import { GrlError } from '../../src/onnx/errors';
import { runCli } from '../../src/cli/main';
import { modelPath } from '../fixtures/reference';
import { rng } from '../helpers/build';
import { OrtJob, RawBatch, runOrt } from '../helpers/ort-training';
import { ortStyleCheckpoint } from '../helpers/ort-checkpoint';

const B = 3;
const T = 7;
const LAMBDA = 0.5;
const model = patchModel(loadModel(modelPath('tagger-opset17')), { heads: [{ name: 'pos', lambda: 0.7 }] }).model;
const LOSSES: ArtifactOptions['losses'] = [{ head: 'pos' }, { head: 'ner', weight: 0.5 }];
const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ortlayout-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

/** A random padded batch (labels -100 where masked), with λ fed explicitly. */
function batch(seed: number): RawBatch {
  const r = rng(seed);
  const mask = Array.from({ length: B * T }, (_, i) => (i % T < 2 || r() < 0.8 ? 1 : 0));
  const ints = (f: (i: number) => number): RawBatch[string] => ({ type: 'int64', data: BigInt64Array.from(mask, (_, i) => BigInt(f(i))), dims: [B, T] });
  return {
    input_ids: ints(() => Math.floor(r() * 128)),
    attention_mask: ints((i) => mask[i]),
    token_type_ids: ints(() => (r() < 0.5 ? 1 : 0)),
    pos: ints((i) => (mask[i] ? Math.floor(r() * 17) : -100)),
    ner: ints((i) => (mask[i] ? Math.floor(r() * 9) : -100)),
    'grl.pos.lambda': { type: 'float32', data: Float32Array.of(LAMBDA), dims: [] },
  };
}
const BATCHES = [batch(11), batch(12), batch(13)];
const nodeFeeds = (b: RawBatch) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, new ort.Tensor(v.type, v.data, v.dims)]));
const scalar = (t: { data: unknown }) => Number((t.data as Float32Array)[0]);
const files = (dir: string, checkpointState = path.join(dir, 'checkpoint')): OrtJob['files'] => ({
  checkpointState, trainModel: path.join(dir, 'training_model.onnx'), evalModel: path.join(dir, 'eval_model.onnx'), optimizerModel: path.join(dir, 'optimizer_model.onnx'),
});

function artifacts(opts: Partial<ArtifactOptions> = {}): string {
  const dir = tmp();
  generateArtifacts(model, { losses: LOSSES, layout: 'ort', ...opts }, dir);
  return dir;
}

/** The step-1 gradient of every trainable parameter, in the session's buffer order. */
async function firstGradient(dir: string, s: TrainingSession): Promise<Float32Array> {
  const { model: grlTraining, grads } = fromOrtTrainingModel(loadModel(path.join(dir, 'training_model.onnx')).proto, 'training_model.onnx');
  const ckpt = loadCheckpoint(path.join(dir, 'checkpoint'));
  const feeds = nodeFeeds(BATCHES[0]);
  for (const t of ckpt.trainable) feeds[t.name] = new ort.Tensor('float32', t.data, t.dims);
  const session = await createOrtSession(serializeModel(grlTraining));
  const out = await session.run(feeds);
  await session.release();
  const g = new Float32Array(s.getParametersSize());
  for (const slot of s.parameterLayout) g.set(out[grads[slot.name]].data as Float32Array, slot.offset);
  return g;
}

function expectLossesClose(a: number[], b: number[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect([i, Math.abs(x - b[i]) / Math.abs(b[i]) <= 1e-5]).toEqual([i, true]));
}

/** Largest |a − b| over elements whose step-1 gradient is above 1e-6 (see the header). */
function expectParamsClose(a: Float32Array, b: Float32Array, grad: Float32Array): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  let compared = 0;
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(grad[i]) > 1e-6)) continue;
    compared++;
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  // Embedding rows of tokens and positions the batches never use have no gradient at all.
  expect(compared).toBeGreaterThan(0.7 * a.length);
  expect(worst).toBeLessThanOrEqual(1e-6);
}

/** grl-onnx's side of an ORT job's steps: lazyResetGrad, runTrainStep per batch, runOptimizerStep; the losses. */
async function trainOurs(ours: TrainingSession, steps: number[][]): Promise<number[]> {
  const losses: number[] = [];
  for (const step of steps) {
    await ours.lazyResetGrad();
    for (const k of step) losses.push(scalar((await ours.runTrainStep(nodeFeeds(BATCHES[k]))).loss));
    await ours.runOptimizerStep();
  }
  return losses;
}

const params = async (s: TrainingSession) => (await s.getContiguousParameters()).data as Float32Array;

describe('--layout ort artifacts (AdamW, GRL with λ fed)', () => {
  let dir: string;
  beforeAll(() => { dir = artifacts(); });

  it('has ORT\'s training and optimizer layout', () => {
    const train = loadModel(path.join(dir, 'training_model.onnx')).proto.graph ?? {};
    const trainable = loadCheckpoint(path.join(dir, 'checkpoint')).trainable.map((t) => t.name);
    const inputs = (train.input ?? []).map((i) => i.name);
    for (const p of trainable) expect(inputs).toContain(`${p}${ACCUMULATION_BUFFER}`);
    expect(inputs[inputs.length - 1]).toBe(LAZY_RESET_GRAD);
    const acc = (train.node ?? []).filter((n) => n.op_type === 'InPlaceAccumulatorV2');
    expect(acc.map((n) => [n.domain, n.input, n.output])).toEqual(trainable.map((p) => ['com.microsoft', [`${p}${ACCUMULATION_BUFFER}`, `${p}_grad`, LAZY_RESET_GRAD], [`${p}${ACCUMULATION_OUT}`]]));
    const outputs = (train.output ?? []).map((o) => o.name ?? '');
    expect(outputs[0]).toBe('loss');
    expect(outputs.slice(-trainable.length)).toEqual(trainable.map((p) => `${p}${ACCUMULATION_OUT}`));
    expect(outputs.filter((o) => o.endsWith('_grad'))).toEqual([]);

    const opt = loadModel(path.join(dir, 'optimizer_model.onnx')).proto.graph ?? {};
    expect((opt.input ?? []).map((i) => i.name)).toEqual(['learning_rate', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments']);
    expect(opt.node?.map((n) => `${n.domain}::${n.op_type}`)).toEqual(['com.microsoft::AdamWOptimizer']);
    const node = opt.node![0];
    expect([attrFloat(node, 'alpha'), attrFloat(node, 'beta'), attrFloat(node, 'epsilon'), attrFloat(node, 'weight_decay')]).toEqual([0.9, 0.999, 1e-8, 0.01].map(Math.fround));
    expect([attrInt(node, 'correct_bias'), attrInt(node, 'adam_mode')]).toEqual([1, 0]);
    expect(opt.output?.map((o) => [o.name, o.type?.tensor_type?.elem_type])).toEqual([['updated_flag', DataType.BOOL]]);
  });

  it('ORT creates a TrainingSession from it; 3 AdamW steps agree with grl-onnx', async () => {
    const steps = [[0], [1], [2]];
    const web = await runOrt({ files: files(dir), batches: BATCHES, steps, readParams: true });
    const ours = await TrainingSession.create(dir);
    expect(web.trainingInputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids', 'pos', 'ner', 'grl.pos.lambda']);
    // grl-onnx feeds λ itself unless the caller does; ORT's caller must feed it every step.
    expect(web.trainingInputNames).toEqual([...ours.trainingInputNames, 'grl.pos.lambda']);
    expect(web.trainingOutputNames).toEqual(ours.trainingOutputNames);
    const grad = await firstGradient(dir, ours);
    const initial = await params(await TrainingSession.create(dir));
    const losses = await trainOurs(ours, steps);
    expectLossesClose(losses, web.losses);
    // Different batches, different losses; and the parameters moved: the steps did something.
    expect(new Set(web.losses).size).toBe(3);
    const mine = await params(ours);
    expect(Math.max(...mine.map((v, i) => Math.abs(v - initial[i])))).toBeGreaterThan(2e-3);
    expectParamsClose(mine, web.params!, grad);
    // ORT's buffer order is ours: loading its buffer gives back the same parameters.
    const other = await TrainingSession.create(dir);
    await other.loadParametersBuffer(web.params!);
    expect(await params(other)).toEqual(web.params);
  });

  it('gradient accumulation (2 train steps, 1 optimizer step) and the eval step agree', async () => {
    const steps = [[0, 1]];
    const web = await runOrt({ files: files(dir), batches: BATCHES, steps, evalBatch: 2, readParams: true });
    const ours = await TrainingSession.create(dir);
    const grad = await firstGradient(dir, ours);
    expectLossesClose(await trainOurs(ours, steps), web.losses);
    const evalOurs = await ours.runEvalStep(nodeFeeds(BATCHES[2]));
    expect(web.evalOutputNames).toEqual(ours.evalOutputNames);
    // onnxruntime-web 1.19.2 names eval results after the training outputs: the losses and
    // counts come back right, the logits (past the training outputs) do not come back.
    expect(Object.keys(web.evalOutputs!)).toEqual(ours.trainingOutputNames);
    for (const n of Object.keys(web.evalOutputs!)) {
      const a = Array.from(evalOurs[n].data as Float32Array);
      const b = web.evalOutputs![n];
      expect([n, a.length]).toEqual([n, b.length]);
      a.forEach((x, i) => expect([n, i, Math.abs(x - b[i]) <= 1e-5 * Math.max(Math.abs(b[i]), 1)]).toEqual([n, i, true]));
    }
    expectParamsClose(await params(ours), web.params!, grad);
  });

  it('a checkpoint grl-onnx saves mid-run resumes in ORT; an ORT-laid-out checkpoint resumes in grl-onnx', async () => {
    const ours = await TrainingSession.create(dir);
    const grad = await firstGradient(dir, ours);
    await trainOurs(ours, [[0], [1]]);
    const saved = path.join(tmp(), 'checkpoint');
    await ours.saveCheckpoint(saved);
    // The same state laid out the way ORT's save::FromCheckpointState writes it: sorted, no grl-onnx settings.
    const ortStyle = ortStyleCheckpoint({ ...ours.checkpointState(), properties: { ints: {}, floats: {}, strings: {} } });
    const ortStyleFile = path.join(tmp(), 'checkpoint');
    fs.writeFileSync(ortStyleFile, ortStyle);
    const names = loadCheckpoint(ortStyle).trainable.map((t) => t.name);
    expect(names).toEqual([...names].sort());
    expect(names).not.toEqual(ours.parameterLayout.map((s) => s.name));

    const fromOrtStyle = await TrainingSession.create({ artifactsDir: dir, checkpointState: ortStyle });
    expect(fromOrtStyle.optimizerStep).toBe(2);
    expect(fromOrtStyle.parameterLayout.map((s) => s.name)).toEqual(ours.parameterLayout.map((s) => s.name));
    expect(await params(fromOrtStyle)).toEqual(await params(ours));

    const job = { batches: BATCHES, steps: [[2]], readParams: true };
    const resumedWeb = await runOrt({ ...job, files: files(dir, saved) });
    const ortStyleWeb = await runOrt({ ...job, files: files(dir, ortStyleFile) });
    const a = await trainOurs(ours, [[2]]);
    const b = await trainOurs(fromOrtStyle, [[2]]);
    expectLossesClose(a, resumedWeb.losses);
    expectLossesClose(b, ortStyleWeb.losses);
    const mine = await params(ours);
    // Same state, same step: grl-onnx resumed from either file agrees but for the learning rate,
    // which the ORT-style file holds only as the float32 initial_learning_rate (as ORT uses it).
    const other = await params(fromOrtStyle);
    expect(Math.max(...mine.map((v, i) => Math.abs(v - other[i])))).toBeLessThanOrEqual(1e-7);
    expectParamsClose(mine, resumedWeb.params!, grad);
    expectParamsClose(mine, ortStyleWeb.params!, grad);
  });
});

describe('--layout ort: SGD and gradient clipping run in ORT too', () => {
  it.each([
    ['SGD (SGDOptimizerV2, no momentum, no weight decay)', { optimizer: 'sgd', learningRate: 1e-3 }],
    ['AdamW after InplaceClipGradNorm (max norm 0.05)', { hyperparameters: { maxGradNorm: 0.05 } }],
  ] as const)('%s: 2 steps agree', async (_, opts) => {
    const dir = artifacts(opts as Partial<ArtifactOptions>);
    const steps = [[0], [1]];
    const web = await runOrt({ files: files(dir), batches: BATCHES, steps, readParams: true });
    const ours = await TrainingSession.create(dir);
    const hyper = ours.getHyperparameters();
    expect([ours.optimizerKind, hyper.maxGradNorm]).toEqual([opts.optimizer ?? 'adamw', Math.fround(opts.hyperparameters?.maxGradNorm ?? 0)]);
    const grad = await firstGradient(dir, ours);
    expectLossesClose(await trainOurs(ours, steps), web.losses);
    // Clipping really happened: the gradient norm was above the threshold.
    if (hyper.maxGradNorm > 0) expect(ours.lastGradientNorm).toBeGreaterThan(2 * hyper.maxGradNorm);
    expectParamsClose(await params(ours), web.params!, grad);
    // The ONNX backend runs grl-onnx's flat optimizer model with the same hyperparameters.
    const onnx = await TrainingSession.create({ artifactsDir: dir, optimizerBackend: 'onnx' });
    await trainOurs(onnx, steps);
    const a = await params(onnx);
    const b = await params(ours);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThanOrEqual(1e-6);
  });
});

describe('--layout ort refusals: one line each', () => {
  const oneLine = (f: () => unknown, re: RegExp) => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GrlError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain('\n');
  };

  it('row-sparse gradients, SGD with momentum or weight decay', () => {
    oneLine(() => artifacts({ rowSparseGradients: true }), /^--layout ort cannot use --row-sparse-gradients: /);
    oneLine(() => artifacts({ optimizer: 'sgd', hyperparameters: { momentum: 0.9 } }), /^--layout ort --optimizer sgd supports neither momentum nor weight decay .*momentum 0\.9, weight decay 0$/);
    oneLine(() => artifacts({ optimizer: 'sgd', hyperparameters: { weightDecay: 1e-4 } }), /weight decay 0\.0001$/);
  });

  it('a user input whose name ORT would take for a gradient buffer', () => {
    const renamed = structuredClone(model.proto);
    const g = renamed.graph!;
    for (const i of g.input ?? []) if (i.name === 'token_type_ids') i.name = 'token_type_ids_grad';
    for (const n of g.node ?? []) n.input = (n.input ?? []).map((x) => (x === 'token_type_ids' ? 'token_type_ids_grad' : x));
    const dir = tmp();
    oneLine(() => generateArtifacts({ ...model, proto: renamed }, { losses: LOSSES, layout: 'ort' }, dir), /^--layout ort: training model input or output 'token_type_ids_grad' ends in a name ORT reserves for gradients/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('TrainingSession refuses an ORT optimizer in Hugging Face mode (adam_mode 1)', async () => {
    const dir = artifacts();
    const opt = loadModel(path.join(dir, 'optimizer_model.onnx'));
    const node = opt.proto.graph!.node![0];
    node.attribute = (node.attribute ?? []).map((a) => (a.name === 'adam_mode' ? { ...a, i: 1 } : a));
    await expect(TrainingSession.create({ artifactsDir: dir, optimizerModel: serializeModel(opt.proto) })).rejects.toThrow(/^<optimizer model>: AdamWOptimizer with adam_mode 1, correct_bias 1: grl-onnx runs only adam_mode 0/);
  });
});

describe('grl-onnx artifacts --layout ort (CLI)', () => {
  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(args, { stdout: { write: (c) => { out += c; } }, stderr: { write: (c) => { err += c; } } });
    return { code, out, err };
  };

  it('writes the set; refuses row-sparse gradients and SGD momentum in one line, exit 1', async () => {
    const dir = tmp();
    const ok = await cli(['artifacts', modelPath('tagger-opset17'), '--head', 'pos:0.7', '--loss', 'pos', '--layout', 'ort', '-o', dir]);
    expect([ok.code, ok.err]).toEqual([0, '']);
    expect(ok.out.split('\n')[0]).toBe(`wrote ${dir} (ort layout): checkpoint, training_model.onnx, eval_model.onnx, optimizer_model.onnx, inference_model.onnx, artifacts.json`);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'artifacts.json'), 'utf8')).layout).toBe('ort');
    const sparse = await cli(['artifacts', modelPath('tagger-opset17'), '--loss', 'pos', '--layout', 'ort', '--row-sparse-gradients', '-o', tmp()]);
    expect([sparse.code, sparse.err]).toEqual([1, 'grl-onnx: --layout ort cannot use --row-sparse-gradients: ORT\'s training runtime accumulates dense gradients only\n']);
    const sgd = await cli(['artifacts', modelPath('tagger-opset17'), '--loss', 'pos', '--layout', 'ort', '--optimizer', 'sgd', '--momentum', '0.9', '-o', tmp()]);
    expect([sgd.code, sgd.err]).toEqual([1, 'grl-onnx: --layout ort --optimizer sgd supports neither momentum nor weight decay (ORT\'s SGDOptimizerV2 has none); got momentum 0.9, weight decay 0\n']);
  });
});
