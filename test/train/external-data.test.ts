// Training on a model whose weights live in ONNX external data (what big exports,
// optimum and torch's use_external_data_format write): artifacts, TrainingSession,
// exportModelForInferencing and `grl-onnx train` must give exactly what the same
// model with in-file weights gives, from folders that can be moved, and never
// read or overwrite the input's data file after the artifacts are written.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel } from '../../src/onnx/io';
import { createOrtSession } from '../../src/onnx/ort';
import { externalRef, isExternal, tensorByteLength } from '../../src/onnx/tensor';
import { DataType } from '../../src/onnx/proto';
import { ARTIFACT_FILES, generateArtifacts } from '../../src/train/artifacts';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { TrainingSession } from '../../src/train/session';
import { runCli } from '../../src/cli/main';
import { MODELS_DIR, modelFromProto, multiHeadModel } from '../helpers/models';
import { BIN, ROOT, ensureBuilt } from '../helpers/bin';
import { randn, rng } from '../helpers/build';

const TINY = path.join(MODELS_DIR, 'tiny-tagger-init.onnx');
const VOCAB = 6966;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-extdata-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const inFile = loadModel(TINY);
const srcDir = path.join(root, 'src');
const extPath = path.join(srcDir, 'ext.onnx');
fs.mkdirSync(srcDir);
saveModel(inFile, extPath, { externalData: { threshold: 1024 } });

const ARTIFACT_OPTS = {
  losses: [{ head: 'pos' }, { head: 'ner', weight: 0.5 }],
  freeze: ['*embeddings*'],
  optimizer: 'sgd' as const,
  learningRate: 1,
  hyperparameters: { weightDecay: 0, momentum: 0 },
};

function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A padded B=3, T=7 batch with token and label values in range for the tiny tagger. */
function batch(seed: number): Record<string, ort.Tensor> {
  const r = rng(seed);
  const B = 3;
  const T = 7;
  const lens = [7, 5, 3];
  const at = (f: (b: number, t: number) => number) => new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, (_, k) => BigInt(f(Math.floor(k / T), k % T))), [B, T]);
  const pad = (b: number, t: number) => t >= lens[b];
  return {
    input_ids: at((b, t) => (pad(b, t) ? 0 : 1 + Math.floor(r() * (VOCAB - 1)))),
    attention_mask: at((b, t) => (pad(b, t) ? 0 : 1)),
    token_type_ids: at(() => 0),
    pos: at((b, t) => (pad(b, t) ? -100 : Math.floor(r() * 17))),
    ner: at((b, t) => (pad(b, t) ? -100 : Math.floor(r() * 7))),
  };
}

/** Every external tensor of every model in `dir` resolves to a file inside `dir`. */
function expectSelfContained(dir: string): string[] {
  const files: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.onnx'))) {
    const m = loadModel(path.join(dir, f));
    for (const t of (m.proto.graph?.initializer ?? []).filter(isExternal)) {
      const loc = externalRef(t).location;
      expect([f, path.dirname(path.resolve(dir, loc))]).toEqual([f, path.resolve(dir)]);
      files.push(loc);
    }
  }
  return [...new Set(files)].sort();
}

/** Run an artifacts folder's training graph (from its path, as ORT resolves external data) with the checkpoint's weights. */
async function runTrainingModel(dir: string, feeds: Record<string, ort.Tensor>, inline = false): Promise<Record<string, Float32Array>> {
  const ckpt = loadCheckpoint(path.join(dir, ARTIFACT_FILES.checkpoint));
  const all = { ...feeds };
  for (const t of ckpt.trainable) all[t.name] = new ort.Tensor('float32', t.data, t.dims);
  const file = path.join(dir, ARTIFACT_FILES.trainModel);
  const s = inline ? await createOrtSession(loadModel(file), { intraOpNumThreads: 1 }) : await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    const out = await s.run(all);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
  return worst;
}

/** Move a folder away (so nothing can still read from it) while `fn` runs. */
async function withFolderAway<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const away = `${dir}-away`;
  fs.renameSync(dir, away);
  try {
    return await fn();
  } finally {
    fs.renameSync(away, dir);
  }
}

describe('a model with external data trains like the same model with in-file weights', () => {
  const ext = loadModel(extPath);
  const extSums = { model: sha(extPath), data: sha(`${extPath}.data`) };
  const refDir = path.join(root, 'ref-artifacts');
  const builtDir = path.join(root, 'built', 'artifacts');
  const movedDir = path.join(root, 'moved', 'artifacts');
  let refOut: Record<string, Float32Array>;
  let meta: ReturnType<typeof generateArtifacts>;

  it('the fixture copy keeps its large initializers (the embeddings among them) external', () => {
    const inits = ext.proto.graph?.initializer ?? [];
    const external = inits.filter(isExternal).map((t) => t.name);
    const bytes = (ts: typeof inits) => ts.reduce((n, t) => n + tensorByteLength(t), 0);
    expect(bytes(inits.filter(isExternal)) / bytes(inits)).toBeGreaterThan(0.95);
    expect(external).toEqual(expect.arrayContaining(['encoder.embeddings.word.weight', 'encoder.embeddings.position.weight', 'encoder.embeddings.token_type.weight']));
  });

  it('(a) artifacts: same loss and gradients, frozen external weights resolved, and the folder can be moved', async () => {
    generateArtifacts(inFile, ARTIFACT_OPTS, refDir);
    meta = generateArtifacts(ext, ARTIFACT_OPTS, builtDir);
    fs.mkdirSync(path.dirname(movedDir));
    fs.renameSync(builtDir, movedDir);
    // Frozen external initializers stay initializers, with their bytes copied next to each graph.
    const frozen = meta.params.filter((p) => !p.trainable).map((p) => p.name);
    expect(frozen).toEqual(expect.arrayContaining(['encoder.embeddings.word.weight', 'encoder.embeddings.position.weight']));
    const training = loadModel(path.join(movedDir, ARTIFACT_FILES.trainModel));
    const word = (training.proto.graph?.initializer ?? []).find((t) => t.name === 'encoder.embeddings.word.weight');
    expect(word && isExternal(word)).toBe(true);
    expect(expectSelfContained(movedDir)).toEqual(['eval_model.onnx.data', 'inference_model.onnx.data', 'training_model.onnx.data']);

    const feeds = batch(11);
    refOut = await runTrainingModel(refDir, feeds);
    const out = await withFolderAway(srcDir, () => runTrainingModel(movedDir, feeds));
    expect(Object.keys(out).sort()).toEqual(Object.keys(refOut).sort());
    expect(out[meta.outputs.loss][0]).toBeGreaterThan(0);
    expect(out[meta.outputs.loss][0]).toBe(refOut[meta.outputs.loss][0]);
    expect(Object.keys(meta.outputs.grads).length).toBe(meta.params.filter((p) => p.trainable).length);
    const worst = Object.values(meta.outputs.grads).map((g) => [g, maxAbsDiff(out[g], refOut[g])] as const).filter(([, d]) => d > 1e-6);
    expect(worst).toEqual([]);
  });

  it('(a) every initializer external (threshold 0), integer constants too: built away from the working directory, same results', async () => {
    // multiHeadModel's Reshape target comes from int64 initializers that shape inference reads.
    const small = modelFromProto(multiHeadModel());
    const allOut = path.join(root, 'all-ext', 'm.onnx');
    fs.mkdirSync(path.dirname(allOut));
    saveModel(small, allOut, { externalData: { threshold: 0 } });
    const all = loadModel(allOut);
    expect((all.proto.graph?.initializer ?? []).every(isExternal)).toBe(true);
    expect((all.proto.graph?.initializer ?? []).filter((t) => t.data_type === DataType.INT64).length).toBe(3);
    const opts = { losses: [{ head: 'pos' }, { head: 'ner' }], optimizer: 'sgd' as const };
    const cwd = process.cwd();
    process.chdir(os.tmpdir());
    try {
      generateArtifacts(all, opts, path.join(root, 'all-ext', 'artifacts'));
    } finally {
      process.chdir(cwd);
    }
    generateArtifacts(small, opts, path.join(root, 'all-ext', 'ref'));
    const r = rng(2);
    const labels = (n: number) => new ort.Tensor('int64', BigInt64Array.from({ length: 6 }, () => BigInt(Math.floor(r() * n))), [2, 3]);
    const feeds = { x: new ort.Tensor('float32', randn(r, 24), [2, 3, 4]), pos: labels(3), ner: labels(2) };
    // ORT's own loader refuses shape constants in external data ("Cannot parse data from external
    // tensors"), for this model as for its input; createOrtSession reads them in first.
    const got = await runTrainingModel(path.join(root, 'all-ext', 'artifacts'), feeds, true);
    const want = await runTrainingModel(path.join(root, 'all-ext', 'ref'), feeds);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    expect(Object.keys(got).filter((k) => k.endsWith('_grad')).length).toBe(9);
    for (const k of Object.keys(want)) expect([k, maxAbsDiff(got[k], want[k])]).toEqual([k, 0]);
  });

  it('(b) TrainingSession: one SGD step with lr = 1 is θ − ∇θ, as for the in-file model', async () => {
    const feeds = batch(11);
    const before = loadCheckpoint(path.join(movedDir, ARTIFACT_FILES.checkpoint)).trainable;
    const after = await withFolderAway(srcDir, async () => {
      const s = await TrainingSession.create(movedDir, { intraOpNumThreads: 1 });
      try {
        const out = await s.runTrainStep(feeds);
        expect((out[meta.outputs.loss].data as Float32Array)[0]).toBe(refOut[meta.outputs.loss][0]);
        expect(await s.runOptimizerStep()).toBe(true);
        return { params: ((await s.getContiguousParameters(true)).data as Float32Array).slice(), layout: s.parameterLayout.map((p) => ({ ...p })) };
      } finally {
        await s.release();
      }
    });
    expect(after.layout.map((p) => p.name)).toEqual(before.map((t) => t.name));
    const bad: string[] = [];
    for (const [i, slot] of after.layout.entries()) {
      const g = refOut[meta.outputs.grads[slot.name]];
      const theta = before[i].data;
      for (let k = 0; k < slot.size; k++) {
        const want = Math.fround(theta[k] - g[k]);
        if (Math.abs(after.params[slot.offset + k] - want) > 1e-6) { bad.push(`${slot.name}[${k}]`); break; }
      }
    }
    expect(bad).toEqual([]);
    // The in-file artifacts take the very same step.
    const s = await TrainingSession.create(refDir, { intraOpNumThreads: 1 });
    await s.runTrainStep(feeds);
    await s.runOptimizerStep();
    const ref = (await s.getContiguousParameters(true)).data as Float32Array;
    await s.release();
    expect(maxAbsDiff(after.params, ref)).toBeLessThanOrEqual(1e-6);
  });

  it('(c) exportModelForInferencing writes its own data file with the trained weights; the input is untouched', async () => {
    const exportDir = path.join(root, 'export');
    fs.mkdirSync(exportDir);
    const dest = path.join(exportDir, 'trained.onnx');
    const feeds = batch(5);
    const { pos, ner, ...inputs } = feeds;
    const evalOut = await withFolderAway(srcDir, async () => {
      const s = await TrainingSession.create(movedDir, { intraOpNumThreads: 1 });
      try {
        await s.runTrainStep(feeds);
        await s.runOptimizerStep();
        await s.exportModelForInferencing(dest);
        // The session's own inference model is never a valid destination.
        await expect(s.exportModelForInferencing(path.join(movedDir, ARTIFACT_FILES.inferenceModel))).rejects.toThrow(/refusing to overwrite/);
        return await s.runEvalStep(feeds);
      } finally {
        await s.release();
      }
    });
    expect(expectSelfContained(exportDir)).toEqual(['trained.onnx.data']);
    const exported = loadModel(dest);
    const word = (exported.proto.graph?.initializer ?? []).find((t) => t.name === 'encoder.embeddings.word.weight');
    expect(word && isExternal(word)).toBe(true);
    // Load it from a copy elsewhere: the exported pair is self-contained too.
    const copyDir = path.join(root, 'export-copy');
    fs.cpSync(exportDir, copyDir, { recursive: true });
    fs.rmSync(exportDir, { recursive: true });
    const inf = await ort.InferenceSession.create(path.join(copyDir, 'trained.onnx'), { intraOpNumThreads: 1 });
    const got = await inf.run(inputs);
    await inf.release();
    for (const name of ['pos_logits', 'ner_logits']) {
      expect(maxAbsDiff(got[name].data as Float32Array, evalOut[name].data as Float32Array)).toBeLessThanOrEqual(1e-6);
    }
    // The trained weights differ from the input's (the step did something)...
    const orig = await ort.InferenceSession.create(extPath, { intraOpNumThreads: 1 });
    const before = await orig.run(inputs);
    await orig.release();
    expect(maxAbsDiff(got.pos_logits.data as Float32Array, before.pos_logits.data as Float32Array)).toBeGreaterThan(1e-4);
    // ...and the input model and its data file are byte for byte what they were.
    expect({ model: sha(extPath), data: sha(`${extPath}.data`) }).toEqual(extSums);
    expect(fs.readdirSync(srcDir).sort()).toEqual(['ext.onnx', 'ext.onnx.data']);
  });

  it('(e) artifacts regenerated into their own folder from its inference_model.onnx: same weights, same loss', async () => {
    // Saving inference_model.onnx in place deletes its old data file; the weights must be read before.
    const regenDir = path.join(root, 'regen', 'artifacts');
    fs.cpSync(movedDir, regenDir, { recursive: true });
    const before = loadCheckpoint(path.join(regenDir, ARTIFACT_FILES.checkpoint)).trainable;
    generateArtifacts(loadModel(path.join(regenDir, ARTIFACT_FILES.inferenceModel)), ARTIFACT_OPTS, regenDir);
    const after = loadCheckpoint(path.join(regenDir, ARTIFACT_FILES.checkpoint)).trainable;
    expect(after.map((t) => t.name)).toEqual(before.map((t) => t.name));
    after.forEach((t, i) => expect([t.name, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(before[i].data.buffer, before[i].data.byteOffset, before[i].data.byteLength))]).toEqual([t.name, true]));
    const data = expectSelfContained(regenDir);
    expect(data).toHaveLength(3);
    expect(data.filter((f) => /^inference_model\.onnx\.[0-9a-f]{8}\.data$/.test(f))).toHaveLength(1);
    expect(fs.readdirSync(regenDir).filter((f) => f.endsWith('.data')).sort()).toEqual(data);
    const out = await runTrainingModel(regenDir, batch(11));
    expect(out[meta.outputs.loss][0]).toBe(refOut[meta.outputs.loss][0]);
  });
});

describe('grl-onnx train on a model with external data', () => {
  const jsonl = fs.readFileSync(path.join(ROOT, 'data', 'dev.jsonl'), 'utf8').split('\n').slice(0, 8).join('\n');
  const data = path.join(root, 'small.jsonl');
  fs.writeFileSync(data, `${jsonl}\n`);
  const capture = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: { write: (s: string | Uint8Array) => { out.push(String(s)); return true; }, isTTY: false }, stderr: { write: (s: string | Uint8Array) => { err.push(String(s)); return true; } } } };
  };
  const args = (out: string) => ['train', extPath, '--data', data, '--loss', 'pos', '--loss', 'ner', '--optimizer', 'sgd', '--lr', '0.1', '--steps', '2', '--batch-size', '4', '--no-shuffle', '--threads', '1', '--out', out];

  it('(d) trains 2 steps and writes a DIR/model.onnx that ORT loads, with its data inside DIR', async () => {
    const run = path.join(root, 'run');
    const sums = { model: sha(extPath), data: sha(`${extPath}.data`) };
    const c = capture();
    const code = await runCli(args(run), c.io as never);
    expect(c.err.join('')).not.toMatch(/error/i);
    expect(code).toBe(0);
    const steps = c.out.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => 'step' in o);
    expect(steps.map((s) => s.step)).toEqual([1, 2]);
    expect(steps.every((s) => Number.isFinite(s.loss) && s.loss > 0)).toBe(true);
    expect(expectSelfContained(run)).toEqual(['model.onnx.data']);
    const moved = path.join(root, 'run-moved');
    fs.renameSync(run, moved);
    const s = await ort.InferenceSession.create(path.join(moved, 'model.onnx'), { intraOpNumThreads: 1 });
    const { pos: _p, ner: _n, ...inputs } = batch(3);
    const out = await s.run(inputs);
    await s.release();
    expect(out.pos_logits.dims).toEqual([3, 7, 17]);
    expect((out.pos_logits.data as Float32Array).every(Number.isFinite)).toBe(true);
    expect({ model: sha(extPath), data: sha(`${extPath}.data`) }).toEqual(sums);
  });

  it('refuses an --out whose model.onnx.data is the input model\'s own data file, and leaves it untouched', async () => {
    const dir = path.join(root, 'same-dir');
    fs.mkdirSync(dir);
    const model = path.join(dir, 'in.onnx');
    saveModel(loadModel(extPath), model, { externalData: { threshold: 1024, location: 'model.onnx.data' } });
    const before = sha(path.join(dir, 'model.onnx.data'));
    const c = capture();
    const code = await runCli(args(dir).map((a) => (a === extPath ? model : a)), c.io as never);
    expect(code).not.toBe(0);
    expect(c.err.join('').trim()).toBe(`grl-onnx: ${model}: the run would overwrite its input's external data ${path.join(dir, 'model.onnx.data')}; give another --out`);
    expect(sha(path.join(dir, 'model.onnx.data'))).toBe(before);
    expect(fs.readdirSync(dir).sort()).toEqual(['in.onnx', 'model.onnx.data']);
  });

  it('a missing data file is one error line naming the file and the tensor, exit code non-zero, no stack trace', () => {
    ensureBuilt();
    const dir = path.join(root, 'missing');
    fs.mkdirSync(dir);
    const model = path.join(dir, 'ext.onnx');
    fs.copyFileSync(extPath, model);
    const r = spawnSync(process.execPath, [BIN, ...args(path.join(root, 'run-missing')).map((a) => (a === extPath ? model : a))], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^grl-onnx: .*ext\.onnx: external data file 'ext\.onnx\.data' of tensor 'encoder\.embeddings\.word\.weight' not found/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(root, 'run-missing'))).toBe(false);
  });
});
