// The trainer end to end on the fixture models: the one-step SGD rule against
// PyTorch's gradients, exact resume, gradient accumulation, learning, and the CLI.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { train, TrainerOptions } from '../../src/train/trainer';
import { runCli } from '../../src/cli/main';
import { FIXTURE_NAMES, ZOO_NAMES, loadReference, modelPath, Reference } from '../fixtures/reference';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-trainer-'));

/** The reference batch as JSONL lines, each row cut to its real (unpadded) length. */
function referenceJsonl(ref: Reference): string {
  const [B, T] = ref.inputs.input_ids.dims;
  const mask = ref.inputs.attention_mask?.data;
  const lines: string[] = [];
  for (let b = 0; b < B; b++) {
    const len = mask ? mask.slice(b * T, (b + 1) * T).reduce((a, m) => a + m, 0) : T;
    const rec: Record<string, unknown> = {};
    for (const [name, t] of Object.entries(ref.inputs)) rec[name] = t.data.slice(b * T, b * T + len);
    for (const h of ref.heads) rec[h.head] = h.level === 'token' ? h.labels.data.slice(b * T, b * T + len) : h.labels.data[b];
    lines.push(JSON.stringify(rec));
  }
  return `${lines.join('\n')}\n`;
}

function weights(file: string): Map<string, Float32Array> {
  const m = loadModel(file);
  return new Map((m.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1).map((t) => [t.name ?? '', tensorToFloat32(t, m.baseDir)]));
}

const quiet: Partial<TrainerOptions> = { threads: 1 };

describe('one SGD step with lr 1 is exactly θ − ∇θ (PyTorch reference gradients)', () => {
  for (const name of [...FIXTURE_NAMES, ...ZOO_NAMES]) {
    for (const kind of ['plain', 'grl'] as const) {
      it(`${name}, ${kind}`, async () => {
        const ref = loadReference(name);
        const c = ref.cases[kind];
        const dir = tmp();
        const data = path.join(dir, 'batch.jsonl');
        fs.writeFileSync(data, referenceJsonl(ref));
        const before = weights(modelPath(name));
        await train({
          ...quiet,
          model: modelPath(name),
          data,
          losses: ref.heads.map((h) => ({ head: h.head, weight: h.weight })),
          heads: c.grl ? [{ name: c.grl.head, lambda: c.grl.lambda }] : undefined,
          optimizer: 'sgd',
          lr: 1,
          steps: 1,
          shuffle: false,
          batchSize: ref.inputs.input_ids.dims[0],
          out: path.join(dir, 'run'),
        });
        const after = weights(path.join(dir, 'run', 'model.onnx'));
        const maxAll = Math.max(...Object.values(c.gradients).map((g) => Math.max(...g.data.map(Math.abs))));
        expect(Object.keys(c.gradients).length).toBeGreaterThan(10);
        for (const [pname, g] of Object.entries(c.gradients)) {
          const b = before.get(pname)!;
          const a = after.get(pname)!;
          expect(a).toBeDefined();
          const scale = Math.max(Math.max(...g.data.map(Math.abs)), 1e-3 * maxAll);
          let worst = 0;
          for (let i = 0; i < g.data.length; i++) worst = Math.max(worst, Math.abs(b[i] - a[i] - g.data[i]));
          // θ and θ − ∇θ are float32: their difference carries the rounding of θ itself.
          const ulp = Math.max(...Array.from(b, (x) => Math.abs(x))) * 2 ** -23;
          if (worst > 1e-4 * scale + 2 * ulp) throw new Error(`${pname}: |Δθ − ∇θ| = ${worst} > ${1e-4 * scale + 2 * ulp}`);
        }
      });
    }
  }
});

/** A learnable synthetic task on the tagger fixture: pos = token id mod 5, ner = id < 64. */
function syntheticJsonl(n: number, seed: number, fixedLen?: number): string {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = fixedLen ?? 3 + Math.floor(rand() * 6);
    const ids = Array.from({ length: len }, () => 1 + Math.floor(rand() * 127));
    lines.push(JSON.stringify({ input_ids: ids, attention_mask: ids.map(() => 1), token_type_ids: ids.map(() => 0), pos: ids.map((x) => x % 5), ner: ids.map((x) => (x < 64 ? 1 : 0)) }));
  }
  return `${lines.join('\n')}\n`;
}

describe('trainer', () => {
  const model = modelPath('tagger-opset17');
  const base = (dir: string, data: string): TrainerOptions => ({ ...quiet, model, data, losses: [{ head: 'pos' }, { head: 'ner', weight: 0.5 }], heads: [{ name: 'pos', lambda: 0.3 }], lambdaSchedule: 'dann', optimizer: 'adamw', lr: 3e-3, batchSize: 4, seed: 5, steps: 6, out: dir });

  it('resumes a run interrupted after 3 steps to exactly the weights of an uninterrupted run', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(10, 1));
    await train(base(path.join(dir, 'straight'), data));
    let n = 0;
    const first = await train(base(path.join(dir, 'split'), data), { onStep: () => n++, shouldStop: () => n >= 3 });
    expect(first.interrupted).toBe(true);
    expect(fs.existsSync(path.join(dir, 'split', 'model.onnx'))).toBe(false);
    const second = await train({ ...base(path.join(dir, 'split'), data), resume: path.join(dir, 'split') });
    expect(second.startStep).toBe(3);
    expect(second.steps).toBe(3);
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'split', 'model.onnx'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
    const lines = fs.readFileSync(path.join(dir, 'split', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => 'step' in l).map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('after a crash past the last --checkpoint-every save, --resume redoes the lost steps and ends with the same weights', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(10, 1));
    const opts = (out: string): TrainerOptions => ({ ...base(out, data), eval: data, evalEvery: 2, checkpointEvery: 2 });
    await train(opts(path.join(dir, 'straight')));
    let n = 0;
    // A crash (think kill -9) right after step 3: the newest checkpoint is the one from step 2.
    await expect(train(opts(path.join(dir, 'crash')), { onStep: () => { if (++n === 3) throw new Error('simulated crash'); } })).rejects.toThrow('simulated crash');
    const resumed = await train({ ...opts(path.join(dir, 'crash')), resume: path.join(dir, 'crash') });
    expect(resumed.startStep).toBe(2);
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'crash', 'model.onnx'));
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
    const lines = (d: string) => fs.readFileSync(path.join(dir, d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const shape = (ls: { step?: number; eval?: { step: number; loss: number } }[]) => ls.map((l) => (l.eval ? `eval${l.eval.step}:${l.eval.loss}` : `step${l.step}`));
    expect(shape(lines('crash'))).toEqual(shape(lines('straight')));
  });

  it('refuses a run whose model.onnx would overwrite its input model', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(4, 1));
    fs.mkdirSync(path.join(dir, 'run'));
    fs.copyFileSync(model, path.join(dir, 'run', 'model.onnx'));
    const before = fs.readFileSync(path.join(dir, 'run', 'model.onnx'));
    await expect(train({ ...base(path.join(dir, 'run'), data), model: path.join(dir, 'run', 'model.onnx') })).rejects.toThrow(/would overwrite its input model/);
    expect(fs.readFileSync(path.join(dir, 'run', 'model.onnx')).equals(before)).toBe(true);
  });

  it('accumulating 2 micro-batches equals one batch of twice the size (equal label counts)', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(8, 3, 6));
    const opts = { ...quiet, model, data, losses: [{ head: 'pos' }, { head: 'ner' }], optimizer: 'sgd' as const, lr: 0.5, steps: 1, shuffle: false };
    await train({ ...opts, batchSize: 8, out: path.join(dir, 'one') });
    await train({ ...opts, batchSize: 4, gradAccum: 2, out: path.join(dir, 'two') });
    const a = weights(path.join(dir, 'one', 'model.onnx'));
    const b = weights(path.join(dir, 'two', 'model.onnx'));
    const orig = weights(model);
    let moved = 0;
    for (const [k, v] of a) {
      const w = b.get(k)!;
      const o = orig.get(k)!;
      for (let i = 0; i < v.length; i++) {
        expect(Math.abs(v[i] - w[i])).toBeLessThan(2e-6 + 1e-5 * Math.abs(v[i] - o[i]) * 10);
        if (v[i] !== o[i]) moved++;
      }
    }
    expect(moved).toBeGreaterThan(1000);
  });

  it('learns a small learnable task: the loss falls by more than half', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(64, 7));
    const steps: number[] = [];
    await train({ ...quiet, model, data, losses: [{ head: 'pos' }], optimizer: 'adamw', lr: 1e-2, batchSize: 16, steps: 60, seed: 1, out: path.join(dir, 'run') }, { onStep: (r) => steps.push(r.loss) });
    const first = steps.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = steps.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last).toBeLessThan(0.5 * first);
  });
});

function captureIO() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

describe('grl-onnx train (CLI)', () => {
  it('prints one JSON object per step, an eval and a summary, with the documented keys', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(12, 2));
    const { io, out, err } = captureIO();
    const code = await runCli(['train', modelPath('tagger-opset17'), '--data', data, '--eval', data, '--loss', 'pos', '--loss', 'ner:0.5', '--head', 'pos:0.5', '--lambda-schedule', 'dann', '--lr', '1e-3', '--steps', '3', '--batch-size', '4', '--threads', '1', '--out', path.join(dir, 'run')], io);
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const objs = out.join('').trim().split('\n').map((l) => JSON.parse(l));
    const steps = objs.filter((o) => 'step' in o);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
    for (const s of steps) {
      for (const k of ['loss', 'loss_pos', 'loss_ner', 'acc_pos', 'lambda', 'lr', 'step_ms']) expect(s).toHaveProperty(k);
      expect(typeof s.lambda.pos).toBe('number');
    }
    // DANN: λ_p = 0.5 · (2 / (1 + e^(−10p)) − 1) at p = step/total, step 0-based.
    expect(steps[1].lambda.pos).toBeCloseTo(0.5 * (2 / (1 + Math.exp(-10 / 3)) - 1), 5);
    expect(objs.some((o) => o.eval)).toBe(true);
    expect(objs[objs.length - 1].summary.steps).toBe(3);
    for (const f of ['model.onnx', 'checkpoint', 'metrics.jsonl']) expect(fs.existsSync(path.join(dir, 'run', f))).toBe(true);
  });

  it('--no-json prints the human summary even when stdout is not a terminal', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, syntheticJsonl(8, 2));
    const { io, out, err } = captureIO();
    const run = path.join(dir, 'run');
    const code = await runCli(['train', modelPath('tagger-opset17'), '--data', data, '--eval', data, '--eval-every', '2', '--loss', 'pos', '--lr', '1e-3', '--steps', '2', '--batch-size', '4', '--threads', '1', '--no-json', '--out', run], io);
    expect([code, err.join('')]).toEqual([0, '']);
    const lines = out.join('').trim().split('\n');
    expect(lines[0]).toMatch(/^eval @ step 2: pos loss \S+ acc \S+% macro-F1 \S+%$/);
    expect(lines[1]).toMatch(/^done: 2\/2 steps, loss \S+, median step \S+ ms$/);
    // The last eval's per-class table: 17 classes named by id (the fixture has no label names).
    expect(lines[3]).toMatch(/^pos: \d+ labels, accuracy \(micro-F1\) \S+%, macro-F1 \S+%$/);
    expect(lines[4].trim().split(/\s+/)).toEqual(['label', 'precision', 'recall', 'f1', 'support', 'predicted']);
    expect(lines.slice(5, 22).map((l) => l.trim().split(/\s+/)[0])).toEqual(Array.from({ length: 17 }, (_, i) => String(i)));
    expect(lines.slice(-3)).toEqual([`model: ${run}/model.onnx`, `checkpoint: ${run}/checkpoint`, `metrics: ${run}/metrics.jsonl`]);
  });

  it('rejects bad data with one line naming file and line, before training, and a non-zero exit', async () => {
    const dir = tmp();
    const data = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(data, '{"input_ids":[1,2],"pos":[1,2],"ner":[0,0]}\n{"input_ids":[1,2],"pos":[1,99],"ner":[0,0]}\n');
    const { io, out, err } = captureIO();
    const code = await runCli(['train', modelPath('tagger-opset17'), '--data', data, '--loss', 'pos', '--lr', '1e-3', '--steps', '1', '--batch-size', '2', '--out', path.join(dir, 'run')], io);
    expect(code).not.toBe(0);
    expect(err.join('')).toMatch(/^grl-onnx: .*bad\.jsonl:2: label 'pos\[1\]' = 99 is outside \[0, 17\)/);
    expect(err.join('').trim().split('\n')).toHaveLength(1);
    expect(out.join('')).toBe('');
    expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
  });
});
