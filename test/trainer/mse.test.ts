// MSE (regression) heads through the trainer and `grl-onnx train`: the loss
// against F.mse_loss computed in JS from an inference run, one SGD step against
// the training graph's own gradient and a finite difference of that JS loss,
// CE + MSE learning together, resume, the CLI's metrics, and bad MSE labels.
// Token-level heads take examples of different lengths: padding and `null`
// targets are NaN labels the loss and the eval metrics skip.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../../src/onnx/io';
import { float32Tensor, tensorToFloat32 } from '../../src/onnx/tensor';
import { buildTrainingGraph } from '../../src/grad/training';
import { DataSpec, makeBatch, parseJsonl } from '../../src/data/jsonl';
import { mseLabelLayout, StepRecord, train, TrainerOptions } from '../../src/train/trainer';
import { parseLossSpec } from '../../src/cli/commands/train';
import { runCli } from '../../src/cli/main';
import { modelPath } from '../fixtures/reference';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-mse-'));
const quiet: Partial<TrainerOptions> = { threads: 1 };

function weights(file: string): Map<string, Float32Array> {
  const m = loadModel(file);
  return new Map((m.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1).map((t) => [t.name ?? '', tensorToFloat32(t, m.baseDir)]));
}

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** Sequence-level: K numbers. Token-level: per token K numbers or null (ignored), any number may be null. */
interface Row { ids: number[]; target: (number | null)[] | ((number | null)[] | null)[] }
/** How a head's labels are laid out: one K-vector per example or per token. */
interface Layout { tokenLevel: boolean; K: number }
const CLS: Layout = { tokenLevel: false, K: 3 };
const NER: Layout = { tokenLevel: true, K: 9 };

/** The classifier's `cls` head as a regression onto 3 features of the ids (learnable). */
function clsRows(n: number, seed: number): Row[] {
  const rand = lcg(seed);
  return Array.from({ length: n }, () => {
    const len = 3 + Math.floor(rand() * 5);
    const ids = Array.from({ length: len }, () => 1 + Math.floor(rand() * 127));
    return { ids, target: [ids.reduce((a, x) => a + x, 0) / len / 128, ids.filter((x) => x < 64).length / len, len / 8] };
  });
}

const nerTarget = (x: number) => Array.from({ length: 9 }, (_, k) => ((x >> (k % 7)) & 1) - 0.25 * k / 9);

/** The tagger's `ner` head (9 values per token) as a token-level regression; one length for all rows. */
function nerRows(n: number, len: number, seed: number): Row[] {
  const rand = lcg(seed);
  return Array.from({ length: n }, () => {
    const ids = Array.from({ length: len }, () => 1 + Math.floor(rand() * 127));
    return { ids, target: ids.map(nerTarget) };
  });
}

/** `ner` rows of 2..7 tokens; some tokens have no target (null), some single values are null. */
function nerVarRows(n: number, seed: number): Row[] {
  const rand = lcg(seed);
  return Array.from({ length: n }, () => {
    const ids = Array.from({ length: 2 + Math.floor(rand() * 6) }, () => 1 + Math.floor(rand() * 127));
    return { ids, target: ids.map((x) => (rand() < 0.15 ? null : nerTarget(x).map((v) => (rand() < 0.1 ? null : v)))) };
  });
}

const jsonl = (rows: Row[], head: string, extra?: (r: Row) => Record<string, unknown>) =>
  `${rows.map((r) => JSON.stringify({ input_ids: r.ids, attention_mask: r.ids.map(() => 1), token_type_ids: r.ids.map(() => 0), [head]: r.target, ...(extra ? extra(r) : {}) })).join('\n')}\n`;

/** Padded int64 feeds built here, independently of src/data: token 0, mask 0 on pads. */
function feedsOf(rows: Row[]): { feeds: Record<string, ort.Tensor>; T: number } {
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(rows.length * T);
  const mask = new BigInt64Array(rows.length * T);
  rows.forEach((r, b) => r.ids.forEach((x, t) => { ids[b * T + t] = BigInt(x); mask[b * T + t] = 1n; }));
  const dims = [rows.length, T];
  return { T, feeds: { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims), token_type_ids: new ort.Tensor('int64', new BigInt64Array(rows.length * T), dims) } };
}

/** Labels laid out like the head's output, [B, K] or [B, T, K], built here independently of src/data: NaN for padding and null. */
function targetsOf(rows: Row[], T: number, { tokenLevel, K }: Layout): Float32Array {
  const per = (tokenLevel ? T : 1) * K;
  const out = new Float32Array(rows.length * per).fill(NaN);
  rows.forEach((r, b) => {
    const vectors = tokenLevel ? (r.target as ((number | null)[] | null)[]) : [r.target as (number | null)[]];
    vectors.forEach((vec, t) => vec?.forEach((v, k) => { if (v !== null) out[b * per + t * K + k] = v; }));
  });
  return out;
}

/**
 * F.mse_loss(y[mask], t[mask]) and F.l1_loss(y[mask], t[mask]) with mask = the real targets (not
 * padding, not null), in float64, from an inference run of `model` on the padded rows.
 */
async function jsErrors(model: Model | string, rows: Row[], output: string, layout: Layout): Promise<{ mse: number; mae: number; n: number }> {
  const bytes = typeof model === 'string' ? fs.readFileSync(model) : serializeModel(model);
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const { feeds, T } = feedsOf(rows);
    const y = (await s.run(feeds))[output].data as Float32Array;
    const t = targetsOf(rows, T, layout);
    expect(y.length).toBe(t.length);
    let se = 0;
    let ae = 0;
    let n = 0;
    t.forEach((v, i) => {
      if (Number.isNaN(v)) return;
      se += (y[i] - v) ** 2;
      ae += Math.abs(y[i] - v);
      n++;
    });
    return { mse: se / n, mae: ae / n, n };
  } finally {
    await s.release();
  }
}

const jsMse = async (model: Model | string, rows: Row[], output: string, layout: Layout) => (await jsErrors(model, rows, output, layout)).mse;

/** The model with every trainable parameter moved to θ + s·d. */
function shifted(file: string, d: Map<string, Float32Array>, s: number): Model {
  const m = loadModel(file);
  const g = m.proto.graph!;
  g.initializer = (g.initializer ?? []).map((t) => {
    const dir = d.get(t.name ?? '');
    if (!dir) return t;
    const v = tensorToFloat32(t, m.baseDir);
    return float32Tensor(t.name ?? '', (t.dims ?? []).map(Number), v.map((x, i) => x + s * dir[i]));
  });
  return m;
}

const cases = [
  { what: 'sequence-level [B, 3] (classifier cls)', fixture: 'classifier' as const, head: 'cls', output: 'cls_logits', layout: CLS, rows: () => clsRows(3, 11) },
  { what: 'token-level [B, T, 9] (tagger ner)', fixture: 'tagger-opset17' as const, head: 'ner', output: 'ner_logits', layout: NER, rows: () => nerRows(3, 5, 4) },
  { what: 'token-level [B, T, 9] with examples of 2..7 tokens and null targets (padding and null ignored)', fixture: 'tagger-opset17' as const, head: 'ner', output: 'ner_logits', layout: NER, rows: () => nerVarRows(4, 2), varying: true },
];

describe('one SGD step (lr 1, no shuffle, batch = file) on an MSE head', () => {
  for (const c of cases) {
    it(`${c.what}: the loss is F.mse_loss of the inference output and θ moves by exactly −∇θ`, async () => {
      const dir = tmp();
      const rows = c.rows();
      const data = path.join(dir, 'd.jsonl');
      fs.writeFileSync(data, jsonl(rows, c.head));
      const model = modelPath(c.fixture);
      const recs: StepRecord[] = [];
      await train({ ...quiet, model, data, losses: [{ head: c.head, kind: 'mse' }], optimizer: 'sgd', lr: 1, steps: 1, shuffle: false, batchSize: rows.length, out: path.join(dir, 'run') }, { onStep: (r) => recs.push(r) });
      if (c.varying) {
        expect(new Set(rows.map((r) => r.ids.length)).size).toBeGreaterThan(2);
        expect(JSON.stringify(rows)).toContain('null');
      }
      const expected = await jsMse(model, rows, c.output, c.layout);
      expect(expected).toBeGreaterThan(0.01);
      expect(Math.abs(recs[0].losses[c.head] - expected)).toBeLessThan(1e-5 * expected);
      expect(recs[0].loss).toBe(recs[0].losses[c.head]);
      expect(recs[0].accuracy).toEqual({});

      // ∇θ from the training graph run directly in ORT on the same batch.
      const m = loadModel(model);
      const tg = buildTrainingGraph(m, { losses: [{ head: c.head, kind: 'mse' }] });
      const before = weights(model);
      const after = weights(path.join(dir, 'run', 'model.onnx'));
      const { feeds, T } = feedsOf(rows);
      const labelDims = c.layout.tokenLevel ? [rows.length, T, c.layout.K] : [rows.length, c.layout.K];
      feeds[c.head] = new ort.Tensor('float32', targetsOf(rows, T, c.layout), labelDims);
      const trainable = tg.params.filter((p) => p.trainable);
      for (const p of trainable) feeds[p.name] = new ort.Tensor('float32', before.get(p.name)!, p.dims);
      const s = await ort.InferenceSession.create(serializeModel(tg.training), { intraOpNumThreads: 1 });
      const res = await s.run(feeds);
      await s.release();
      expect(trainable.length).toBeGreaterThan(10);
      const step = new Map<string, Float32Array>();
      let moved = 0;
      for (const p of trainable) {
        const g = res[tg.outputs.grads[p.name]].data as Float32Array;
        const b = before.get(p.name)!;
        const a = after.get(p.name)!;
        const ulp = Math.max(...Array.from(b, Math.abs)) * 2 ** -23;
        for (let i = 0; i < g.length; i++) {
          if (Math.abs(b[i] - a[i] - g[i]) > 2 * ulp + 1e-7 * Math.abs(g[i])) throw new Error(`${p.name}[${i}]: Δθ ${b[i] - a[i]} vs ∇θ ${g[i]}`);
          if (g[i] !== 0) moved++;
        }
        step.set(p.name, Float32Array.from(a, (x, i) => x - b[i]));
      }
      expect(moved).toBeGreaterThan(1000);

      // And ∇θ is the gradient of the JS loss: along d = Δθ = −∇θ, dL/ds = −|∇θ|².
      const g2 = trainable.reduce((acc, p) => acc + (res[tg.outputs.grads[p.name]].data as Float32Array).reduce((a, v) => a + v * v, 0), 0);
      const eps = 1e-3 / Math.sqrt(g2);
      const numeric = ((await jsMse(shifted(model, step, eps), rows, c.output, c.layout)) - (await jsMse(shifted(model, step, -eps), rows, c.output, c.layout))) / (2 * eps);
      expect(Math.abs(numeric + g2)).toBeLessThan(1e-3 * g2);
    });
  }
});

describe('token-level MSE with examples of different lengths (NaN = ignore)', () => {
  it('30 AdamW steps more than halve the masked loss of the trained model on the whole file', async () => {
    const dir = tmp();
    const rows = nerVarRows(32, 21);
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, jsonl(rows, 'ner'));
    const model = modelPath('tagger-opset17');
    const recs: StepRecord[] = [];
    const run = await train({ ...quiet, model, data, losses: [{ head: 'ner', kind: 'mse' }], optimizer: 'adamw', lr: 1e-2, batchSize: 8, steps: 30, seed: 3, out: path.join(dir, 'run') }, { onStep: (r) => recs.push(r) });
    expect(recs).toHaveLength(30);
    for (const r of recs) expect(Number.isFinite(r.losses.ner)).toBe(true);
    const before = await jsMse(model, rows, 'ner_logits', NER);
    const after = await jsMse(run.model, rows, 'ner_logits', NER);
    expect(after).toBeLessThan(0.5 * before);
  });

  it('eval mse/mae are over the real targets only, across eval batches padded to different lengths', async () => {
    const dir = tmp();
    const train_ = path.join(dir, 'train.jsonl');
    const evalRows = nerVarRows(40, 17);
    const evalFile = path.join(dir, 'eval.jsonl');
    fs.writeFileSync(train_, jsonl(nerVarRows(8, 2), 'ner'));
    fs.writeFileSync(evalFile, jsonl(evalRows, 'ner'));
    // Eval batches are max(batch size, 32) = 32 rows: 32 + 8, each padded to its own longest row.
    const run = await train({ ...quiet, model: modelPath('tagger-opset17'), data: train_, eval: evalFile, losses: [{ head: 'ner', kind: 'mse' }], lr: 1e-3, batchSize: 4, steps: 2, out: path.join(dir, 'run') });
    const js = await jsErrors(run.model, evalRows, 'ner_logits', NER);
    const ev = run.lastEval!.heads.ner;
    expect(ev.count).toBe(js.n);
    expect(js.n).toBeLessThan(9 * evalRows.reduce((a, r) => a + r.ids.length, 0));
    expect(Math.abs(ev.loss - js.mse)).toBeLessThan(1e-5 * js.mse);
    expect(Math.abs(ev.mae! - js.mae)).toBeLessThan(1e-5 * js.mae);
    expect(run.lastEval!.loss).toBe(ev.loss);
  });
});

describe('CE and MSE heads train together', () => {
  it('on the classifier, tag (CE) + 0.5·cls (MSE): each head\'s loss falls over 30 AdamW steps', async () => {
    const dir = tmp();
    const rows = clsRows(48, 3);
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, jsonl(rows, 'cls', (r) => ({ tag: r.ids.map((x) => x % 5) })));
    const recs: StepRecord[] = [];
    await train({ ...quiet, model: modelPath('classifier'), data, losses: [{ head: 'tag' }, { head: 'cls', weight: 0.5, kind: 'mse' }], optimizer: 'adamw', lr: 1e-2, batchSize: 16, steps: 30, seed: 2, out: path.join(dir, 'run') }, { onStep: (r) => recs.push(r) });
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = (k: (r: StepRecord) => number) => avg(recs.slice(0, 3).map(k));
    const last = (k: (r: StepRecord) => number) => avg(recs.slice(-3).map(k));
    expect(recs).toHaveLength(30);
    for (const r of recs) expect(r.loss).toBeCloseTo(r.losses.tag + 0.5 * r.losses.cls, 5);
    // The MSE head drops within a few steps, then moves with the encoder the CE head is reshaping.
    expect(avg(recs.slice(-5).map((r) => r.losses.cls))).toBeLessThan(0.3 * recs[0].losses.cls);
    expect(last((r) => r.losses.tag)).toBeLessThan(0.5 * first((r) => r.losses.tag));
    expect(Object.keys(recs[0].accuracy)).toEqual(['tag']);
  });

  it('resumes a CE + MSE run to exactly the weights of an uninterrupted one; eval mse/mae are those of the trained model', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    const rows = clsRows(12, 5);
    fs.writeFileSync(data, jsonl(rows, 'cls', (r) => ({ tag: r.ids.map((x) => x % 5) })));
    const opts = (out: string): TrainerOptions => ({ ...quiet, model: modelPath('classifier'), data, eval: data, losses: [{ head: 'tag' }, { head: 'cls', kind: 'mse' }], lr: 3e-3, batchSize: 4, steps: 4, seed: 1, out });
    const straight = await train(opts(path.join(dir, 'straight')));
    // The final eval (one batch of all 12 rows) ran on the weights model.onnx holds.
    const js = await jsErrors(straight.model, rows, 'cls_logits', CLS);
    const ev = straight.lastEval!.heads.cls;
    expect(Math.abs(ev.loss - js.mse)).toBeLessThan(1e-5 * js.mse);
    expect(Math.abs(ev.mae! - js.mae)).toBeLessThan(1e-5 * js.mae);
    let n = 0;
    await train(opts(path.join(dir, 'split')), { onStep: () => n++, shouldStop: () => n >= 2 });
    const resumed = await train({ ...opts(path.join(dir, 'split')), resume: path.join(dir, 'split') });
    expect(resumed.startStep).toBe(2);
    expect(resumed.lastEval?.heads.cls.accuracy).toBeUndefined();
    expect(resumed.lastEval?.heads.cls.count).toBe(36);
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'split', 'model.onnx'));
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
  });
});

function captureIO(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

describe('grl-onnx train with --loss HEAD:WEIGHT:mse', () => {
  const mixed = (dir: string) => {
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, jsonl(clsRows(8, 9), 'cls', (r) => ({ tag: r.ids.map((x) => x % 5) })));
    return ['train', modelPath('classifier'), '--data', data, '--eval', data, '--loss', 'tag', '--loss', 'cls:0.5:mse', '--lr', '1e-3', '--steps', '2', '--batch-size', '4', '--threads', '1', '--out', path.join(dir, 'run')];
  };

  it('--json step lines carry loss_cls and no acc_cls; eval and metrics.jsonl give cls its mse and mae, never an accuracy', async () => {
    const dir = tmp();
    const { io, out, err } = captureIO();
    const code = await runCli([...mixed(dir), '--json'], io);
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const objs = out.join('').trim().split('\n').map((l) => JSON.parse(l));
    const steps = objs.filter((o) => 'step' in o);
    expect(steps.map((s) => s.step)).toEqual([1, 2]);
    for (const s of steps) {
      expect(typeof s.loss_cls).toBe('number');
      expect(s.loss_cls).toBeGreaterThan(0);
      expect(s).toHaveProperty('acc_tag');
      expect(s).not.toHaveProperty('acc_cls');
      expect(s.loss).toBeCloseTo(s.loss_tag + 0.5 * s.loss_cls, 5);
    }
    const ev = objs.find((o) => o.eval).eval;
    expect(Object.keys(ev.heads.cls).sort()).toEqual(['count', 'loss', 'mae']);
    expect(ev.heads.cls.count).toBe(24);
    expect(ev.heads.cls.mae).toBeGreaterThan(0);
    // Jensen: the mean absolute error is at most the root of the mean squared one.
    expect(ev.heads.cls.mae).toBeLessThanOrEqual(Math.sqrt(ev.heads.cls.loss) + 1e-6);
    expect(typeof ev.heads.tag.accuracy).toBe('number');
    expect(objs[objs.length - 1].summary.steps).toBe(2);
    const metrics = fs.readFileSync(path.join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((l) => 'step' in l)).toHaveLength(2);
    for (const l of metrics) {
      if (l.step) expect(Object.keys(l.accuracy)).toEqual(['tag']);
      else expect(l.eval.heads.cls).not.toHaveProperty('accuracy');
    }
  });

  it('the human-readable eval and summary show cls as mse/mae, with no NaN or undefined', async () => {
    const dir = tmp();
    const { io, out, err } = captureIO(true);
    const code = await runCli(mixed(dir), io);
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/eval @ step 2: tag loss \d+\.\d{4} acc \d+\.\d{2}% macro-F1 \d+\.\d{2}%, cls mse \d+\.\d{4} mae \d+\.\d{4}\n/);
    expect(text).toMatch(/^dev: tag loss \d+\.\d{4} acc \d+\.\d{2}% macro-F1 \d+\.\d{2}%, cls mse \d+\.\d{4} mae \d+\.\d{4}$/m);
    expect(text).not.toMatch(/NaN|undefined/);
    // The per-class table is for the CE head only: the MSE head has no classes.
    expect(text).toMatch(/^tag: \d+ labels, accuracy \(micro-F1\)/m);
    expect(text).not.toMatch(/^cls: /m);
  });

  it('rejects bad MSE labels with one line naming file and line, before training, and a non-zero exit', async () => {
    const dir = tmp();
    const data = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(data, '{"input_ids":[1,2],"cls":[0.5,1,2]}\n\n{"input_ids":[1,2],"cls":[0.5,"x",2]}\n');
    const { io, out, err } = captureIO();
    const code = await runCli(['train', modelPath('classifier'), '--data', data, '--loss', 'cls:mse', '--lr', '1e-3', '--steps', '1', '--batch-size', '2', '--out', path.join(dir, 'run')], io);
    expect(code).not.toBe(0);
    expect(err.join('')).toMatch(/^grl-onnx: .*bad\.jsonl:3: label 'cls\[1\]' is "x", not a finite number\n$/);
    expect(out.join('')).toBe('');
    expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
  });

  it('rejects an unknown loss kind with one line', async () => {
    const dir = tmp();
    const { io, err } = captureIO();
    const code = await runCli(['train', modelPath('classifier'), '--data', path.join(dir, 'none.jsonl'), '--loss', 'cls:0.5:foo', '--lr', '1', '--steps', '1', '--batch-size', '1', '--out', path.join(dir, 'run')], io);
    expect(code).not.toBe(0);
    expect(err.join('')).toMatch(/--loss cls:0\.5:foo: kind must be ce, mse or mlm\n$/);
    expect(err.join('').trim().split('\n')).toHaveLength(1);
  });
});

describe('--loss HEAD[:WEIGHT][:ce|mse]', () => {
  it.each([
    ['pos', { head: 'pos', weight: 1 }],
    ['pos:0.5', { head: 'pos', weight: 0.5 }],
    ['score:mse', { head: 'score', weight: 1, kind: 'mse' }],
    ['score:0.5:mse', { head: 'score', weight: 0.5, kind: 'mse' }],
    ['pos:2:ce', { head: 'pos', weight: 2, kind: 'ce' }],
    ['a:b:0.5', { head: 'a:b', weight: 0.5 }],
  ])('%s', (spec, expected) => expect(parseLossSpec(spec)).toStrictEqual(expected));
  it.each([
    ['x:0.5:foo', /^--loss x:0\.5:foo: kind must be ce or mse$/],
    ['x:foo', /^--loss x:foo: 'foo' is neither a weight nor a kind \(ce or mse\)/],
    ['x:', /^--loss x:: '' is neither a weight/],
    ['x:nan:mse', /^--loss x:nan:mse: the weight must be a finite number$/],
    ['score:mse:0.5', /^--loss score:mse:0\.5: the kind goes last: score:0\.5:mse$/],
  ])('rejects %s', (spec, re) => expect(() => parseLossSpec(spec)).toThrow(re));
});

describe('MSE label layout and validation', () => {
  it('derives the label layout from the output\'s static shape', () => {
    expect(mseLabelLayout('h', 'y', ['batch'])).toEqual({ tokenLevel: false, dims: [] });
    expect(mseLabelLayout('h', 'y', ['batch', 1])).toEqual({ tokenLevel: false, dims: [1] });
    expect(mseLabelLayout('h', 'y', ['batch', 3])).toEqual({ tokenLevel: false, dims: [3] });
    expect(mseLabelLayout('h', 'y', ['batch', 'sequence'])).toEqual({ tokenLevel: true, dims: [] });
    expect(mseLabelLayout('h', 'y', ['batch', 'sequence', 9])).toEqual({ tokenLevel: true, dims: [9] });
    expect(() => mseLabelLayout('h', 'y', ['batch', 'sequence', 'k'])).toThrow(/^MSE head 'h': output 'y' has shape \[batch, sequence, k\]; every dim after batch and sequence must be static/);
    expect(() => mseLabelLayout('h', 'y', undefined)).toThrow(/^MSE head 'h': the shape of its output 'y' is unknown/);
  });

  const spec: DataSpec = {
    inputs: ['input_ids'],
    labels: [{ key: 'score', kind: 'mse', tokenLevel: false, dims: [1] }, { key: 'vec', kind: 'mse', tokenLevel: false, dims: [2] }, { key: 'tok', kind: 'mse', tokenLevel: true, dims: [] }],
  };
  it('accepts numbers shaped like the output per example and batches them as float32', () => {
    const ex = parseJsonl('{"input_ids":[1,2],"score":0.5,"vec":[1,-2.5],"tok":[3,4]}\n{"input_ids":[3,4],"score":[-1e-3],"vec":[0,1e30],"tok":[-1,0.25]}\n', 'd.jsonl', spec);
    const b = makeBatch(ex, spec);
    expect(Array.from(b.labels.score as Float32Array)).toEqual([0.5, Math.fround(-1e-3)]);
    expect(Array.from(b.labels.vec as Float32Array)).toEqual([1, -2.5, 0, Math.fround(1e30)]);
    expect(Array.from(b.labels.tok as Float32Array)).toEqual([3, 4, -1, 0.25]);
  });

  const line2 = (s: string) => `{"input_ids":[1,2],"score":1,"vec":[1,2],"tok":[1,2]}\n${s}\n`;
  const bad: [string, string, RegExp][] = [
    ['a string', '{"input_ids":[1,2],"score":"1","vec":[1,2],"tok":[1,2]}', /^d\.jsonl:2: label 'score' is "1", not a finite number$/],
    ['a boolean', '{"input_ids":[1,2],"score":1,"vec":[1,true],"tok":[1,2]}', /^d\.jsonl:2: label 'vec\[1\]' is true, not a finite number$/],
    ['a null token-level label (it must list its tokens)', '{"input_ids":[1,2],"score":1,"vec":[1,2],"tok":null}', /^d\.jsonl:2: label 'tok' must be an array \(one target per token, null for a token without one\)$/],
    ['an array nested too deep', '{"input_ids":[1,2],"score":1,"vec":[[1],2],"tok":[1,2]}', /^d\.jsonl:2: label 'vec\[0\]' is \[1\], not a finite number$/],
    ['NaN written by Python (not JSON)', '{"input_ids":[1,2],"score":NaN,"vec":[1,2],"tok":[1,2]}', /^d\.jsonl:2: malformed JSON \(.*\); JSON has no NaN: write null for a target to ignore$/],
    ['a number overflowing to infinity', '{"input_ids":[1,2],"score":1e400,"vec":[1,2],"tok":[1,2]}', /^d\.jsonl:2: label 'score' is Infinity, not a finite number$/],
    ['a number outside float32', '{"input_ids":[1,2],"score":1e39,"vec":[1,2],"tok":[1,2]}', /^d\.jsonl:2: label 'score' = 1e\+39 does not fit in float32$/],
    ['too few values per example', '{"input_ids":[1,2],"score":1,"vec":[1],"tok":[1,2]}', /^d\.jsonl:2: label 'vec' has 1 numbers but the head's output has 2 per example$/],
    ['a number where an array is needed', '{"input_ids":[1,2],"score":1,"vec":3,"tok":[1,2]}', /^d\.jsonl:2: label 'vec' must be an array of 2 numbers/],
    ['two values for a one-value head', '{"input_ids":[1,2],"score":[1,2],"vec":[1,2],"tok":[1,2]}', /^d\.jsonl:2: label 'score' has 2 numbers but the head's output has 1 per example$/],
    ['a token label of the wrong length', '{"input_ids":[1,2],"score":1,"vec":[1,2],"tok":[1]}', /^d\.jsonl:2: label 'tok' has 1 items but 'input_ids' has 2$/],
  ];
  it.each(bad)('rejects %s with file and line', (_what, text, re) => {
    expect(() => parseJsonl(line2(text), 'd.jsonl', spec)).toThrow(re);
  });

  it('pads token-level targets with NaN and reads null as NaN (a number, a token\'s K values, an example\'s K values)', () => {
    const ex = parseJsonl('{"input_ids":[1,2,3],"score":null,"vec":[null,2],"tok":[1,null,3]}\n{"input_ids":[4],"score":2,"vec":null,"tok":[0.5]}\n', 'd.jsonl', spec);
    const b = makeBatch(ex, spec);
    expect(b.seqLen).toBe(3);
    expect(Array.from(b.labels.score as Float32Array)).toEqual([NaN, 2]);
    expect(Array.from(b.labels.vec as Float32Array)).toEqual([NaN, 2, NaN, NaN]);
    expect(Array.from(b.labels.tok as Float32Array)).toEqual([1, NaN, 3, 0.5, NaN, NaN]);
    const s: DataSpec = { inputs: ['input_ids'], labels: [{ key: 'y', kind: 'mse', tokenLevel: true, dims: [2] }] };
    const b2 = makeBatch(parseJsonl('{"input_ids":[1,2],"y":[null,[3,null]]}\n{"input_ids":[3],"y":[[5,6]]}\n', 'd.jsonl', s), s);
    expect(Array.from(b2.labels.y as Float32Array)).toEqual([NaN, NaN, 3, NaN, 5, 6, NaN, NaN]);
  });

  it('reads K targets per token for [B, T, K] and names the token of a bad one', () => {
    const s: DataSpec = { inputs: ['input_ids'], labels: [{ key: 'y', kind: 'mse', tokenLevel: true, dims: [2] }] };
    const b = makeBatch(parseJsonl('{"input_ids":[1,2],"y":[[1,2],[3,4]]}\n{"input_ids":[3,4],"y":[[5,6],[7,8]]}\n', 'd.jsonl', s), s);
    expect(Array.from(b.labels.y as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => parseJsonl('{"input_ids":[1,2],"y":[[1,2],[3]]}', 'd.jsonl', s)).toThrow(/^d\.jsonl:1: label 'y\[1\]' has 1 numbers but the head's output has 2 per token$/);
  });
});
