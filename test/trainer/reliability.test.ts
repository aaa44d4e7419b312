// The trainer under interruption and bad numbers: Ctrl-C saves a checkpoint and
// exits cleanly (and the run resumes), a non-finite loss stops with the step and
// head named (or is skipped), and `grl-onnx artifacts` writes ORT's layout.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { runCli } from '../../src/cli/main';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { loadModel } from '../../src/onnx/io';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { train, TrainerOptions } from '../../src/train/trainer';
import { BIN, ensureBuilt } from '../helpers/bin';
import { modelPath } from '../fixtures/reference';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-rel-'));

function dataFile(dir: string, n = 16): string {
  const lines = Array.from({ length: n }, (_, i) => {
    const ids = [1 + (i % 50), 2 + ((i * 7) % 90), 3 + ((i * 13) % 100)];
    return JSON.stringify({ input_ids: ids, pos: ids.map((x) => x % 17), ner: ids.map((x) => x % 9) });
  });
  const f = path.join(dir, 'd.jsonl');
  fs.writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

describe('reliability', () => {
  beforeAll(() => ensureBuilt(), 180000);

  it('Ctrl-C saves a checkpoint, exits 130, and --resume finishes the run', async () => {
    const dir = tmp();
    const data = dataFile(dir);
    const run = path.join(dir, 'run');
    const args = [BIN, 'train', modelPath('tagger-opset17'), '--data', data, '--loss', 'pos', '--lr', '1e-3', '--batch-size', '4', '--steps', '100000', '--threads', '1', '--out', run];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (!sent && stdout.split('\n').length > 3) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code: number | null = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    expect(stderr).not.toMatch(/\n\s+at /);
    const summary = JSON.parse(stdout.trim().split('\n').pop() as string).summary;
    expect(summary.interrupted).toBe(true);
    const ckpt = loadCheckpoint(path.join(run, 'checkpoint'));
    expect(ckpt.optimizerGroups[0].step).toBe(summary.steps);
    expect(summary.steps).toBeGreaterThanOrEqual(3);

    const { io, out } = capture();
    const resumed = await runCli(['train', modelPath('tagger-opset17'), '--data', data, '--loss', 'pos', '--lr', '1e-3', '--batch-size', '4', '--steps', String(summary.steps + 2), '--threads', '1', '--resume', run], io);
    expect(resumed).toBe(0);
    const steps = out.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => 'step' in o).map((o) => o.step);
    expect(steps).toEqual([summary.steps + 1, summary.steps + 2]);
    expect(fs.existsSync(path.join(run, 'model.onnx'))).toBe(true);
  }, 60000);

  it('stops at a non-finite loss naming the step and the head; --skip-nonfinite skips such batches', async () => {
    const dir = tmp();
    const data = dataFile(dir);
    const common = ['train', modelPath('tagger-opset17'), '--data', data, '--loss', 'pos', '--optimizer', 'sgd', '--lr', '1e30', '--batch-size', '4', '--steps', '4', '--threads', '1'];
    const a = capture();
    const code = await runCli([...common, '--out', path.join(dir, 'a')], a.io);
    expect(code).not.toBe(0);
    expect(a.err.join('')).toMatch(/^grl-onnx: non-finite loss at step \d+ in head 'pos'/);
    const b = capture();
    expect(await runCli([...common, '--skip-nonfinite', '--out', path.join(dir, 'b')], b.io)).toBe(0);
    const steps = b.out.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((o) => 'step' in o);
    expect(steps).toHaveLength(4);
    expect(steps.some((s) => s.skipped)).toBe(true);
    // A skipped batch counts once: the run and its checkpoint are at step 4, not 4 + skips.
    const summary = b.out.join('').trim().split('\n').map((l) => JSON.parse(l)).find((o) => o.summary).summary;
    expect(summary.steps).toBe(4);
    expect(loadCheckpoint(path.join(dir, 'b', 'checkpoint')).optimizerGroups[0].step).toBe(4);
  });

  it('grl-onnx artifacts writes ORT\'s layout with a GRL λ input and frozen parameters', async () => {
    const dir = tmp();
    const { io, out, err } = capture();
    const code = await runCli(['artifacts', modelPath('tagger-opset14'), '--head', 'pos:0.7', '--loss', 'pos', '--loss', 'ner:0.5', '--freeze', '*embeddings*', '--optimizer', 'sgd', '-o', dir, '--json'], io);
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const meta = JSON.parse(out.join(''));
    for (const f of ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'checkpoint']) expect(fs.existsSync(path.join(dir, f))).toBe(true);
    expect(meta.lambdas.map((l: { input: string }) => l.input)).toEqual(['grl.pos.lambda']);
    const frozen = meta.params.filter((p: { trainable: boolean }) => !p.trainable).map((p: { name: string }) => p.name);
    expect(frozen.length).toBeGreaterThan(0);
    expect(frozen.every((n: string) => n.includes('embeddings'))).toBe(true);
    const training = loadModel(path.join(dir, 'training_model.onnx')).proto.graph!;
    const inputs = new Set((training.input ?? []).map((i) => i.name));
    expect(inputs.has('grl.pos.lambda')).toBe(true);
    for (const n of frozen) expect(inputs.has(n)).toBe(false);
    expect((training.node ?? []).every((n) => !n.domain)).toBe(true);
    const ckpt = loadCheckpoint(path.join(dir, 'checkpoint'));
    expect(ckpt.frozen.map((t) => t.name).sort()).toEqual([...frozen].sort());
    const optInputs = (loadModel(path.join(dir, 'optimizer_model.onnx')).proto.graph!.input ?? []).map((i) => i.name);
    expect(optInputs).toEqual(expect.arrayContaining(['learning_rate', 'params', 'gradients', 'momentum_buffer']));
  });

  it('grl-onnx artifacts outputs dense gradients, or the word table\'s row-sparse with --row-sparse-gradients', async () => {
    const outputsOf = (d: string) => (loadModel(path.join(d, 'training_model.onnx')).proto.graph!.output ?? []).map((o) => o.name).filter((n) => n!.startsWith('encoder.embeddings.word'));
    const sparse = tmp();
    const a = capture();
    expect(await runCli(['artifacts', modelPath('tagger-opset14'), '--loss', 'pos', '--row-sparse-gradients', '-o', sparse], a.io)).toBe(0);
    expect(a.out.join('')).toContain('  row-sparse gradients (<param>_grad_rows + <param>_grad_indices): encoder.embeddings.word.weight\n');
    expect(outputsOf(sparse)).toEqual(['encoder.embeddings.word.weight_grad_rows', 'encoder.embeddings.word.weight_grad_indices']);
    const dense = tmp();
    const b = capture();
    expect(await runCli(['artifacts', modelPath('tagger-opset14'), '--loss', 'pos', '-o', dense], b.io)).toBe(0);
    expect(b.out.join('')).not.toContain('row-sparse');
    expect(outputsOf(dense)).toEqual(['encoder.embeddings.word.weight_grad']);
  });
});

describe('models the gradient builder refuses up front', () => {
  it('a float16 model gets one line naming the initializer and its type', () => {
    const { buildTrainingGraph } = require('../../src/grad/training');
    const m = loadModel(modelPath('tagger-opset17'));
    const inits = m.proto.graph!.initializer!;
    const t = inits.find((x) => (x.dims?.length ?? 0) === 2)!;
    const half = { ...t, data_type: 10, raw_data: new Uint8Array((t.raw_data as Uint8Array).length / 2) };
    const model = { ...m, proto: { ...m.proto, graph: { ...m.proto.graph, initializer: inits.map((x) => (x === t ? half : x)) } } };
    expect(() => buildTrainingGraph(model, { losses: [{ head: 'pos' }] })).toThrow(new RegExp(`initializer '${t.name!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' is FLOAT16; grl-onnx builds gradient graphs for float32 models only`));
  });
});

describe('resume across skipped (non-finite) steps', () => {
  function jsonl(n: number): string {
    let s = 1;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    return Array.from({ length: n }, () => {
      const ids = Array.from({ length: 3 + Math.floor(rand() * 5) }, () => 1 + Math.floor(rand() * 127));
      return JSON.stringify({ input_ids: ids, pos: ids.map((x) => x % 5), ner: ids.map((x) => (x < 64 ? 1 : 0)) });
    }).join('\n') + '\n';
  }
  const weights = (f: string) => {
    const m = loadModel(f);
    return new Map((m.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1).map((t) => [t.name ?? '', tensorToFloat32(t, m.baseDir)]));
  };

  it.each([1, 2])('an interrupted run with skipped steps resumes to the same records and weights as an uninterrupted one (grad-accum %i)', async (gradAccum) => {
    const dir = tmp();
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, jsonl(24));
    // lr 1e30 makes some steps non-finite; cosine lr and a dann λ make any miscount visible.
    const base = (out: string): TrainerOptions => ({
      threads: 1, model: modelPath('tagger-opset17'), data, losses: [{ head: 'pos' }, { head: 'ner', weight: 0.5 }], heads: [{ name: 'pos', lambda: 0.3 }],
      lambdaSchedule: 'dann', lrSchedule: 'cosine', warmup: 2, optimizer: 'sgd', lr: 1e30, batchSize: 2, gradAccum, seed: 5, steps: 7, skipNonfinite: true, out,
    });
    const straight = await train(base(path.join(dir, 'straight')));
    let n = 0;
    const first = await train(base(path.join(dir, 'split')), { onStep: () => n++, shouldStop: () => n >= 4 });
    expect(first.interrupted).toBe(true);
    expect(loadCheckpoint(path.join(dir, 'split', 'checkpoint')).optimizerGroups[0].step).toBe(4);
    const second = await train({ ...base(path.join(dir, 'split')), resume: path.join(dir, 'split') });
    expect(second.startStep).toBe(4);
    expect(straight.steps).toBe(7);
    const records = (d: string) => fs.readFileSync(path.join(dir, d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => 'step' in l).map(({ step_ms: _ms, ...r }) => r);
    const expected = records('straight');
    expect(expected.filter((r) => r.skipped).length).toBeGreaterThan(0);
    expect(expected.find((r) => r.skipped).step).toBeLessThanOrEqual(4);
    expect(JSON.stringify(records('split'))).toBe(JSON.stringify(expected));
    const a = weights(path.join(dir, 'straight', 'model.onnx'));
    const b = weights(path.join(dir, 'split', 'model.onnx'));
    for (const [k, v] of a) expect([k, Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer))]).toEqual([k, true]);
    expect(loadCheckpoint(path.join(dir, 'split', 'checkpoint')).optimizerGroups[0].step).toBe(7);
  }, 120000);
});
