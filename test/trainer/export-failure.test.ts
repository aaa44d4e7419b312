// The end of a run: the checkpoint is saved and the session released before the export, so a
// failing export leaves a resumable run (checkpoint, all metrics lines, no model, no run.json),
// and --resume then only exports: same weights as a run whose export went through.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../src/onnx/io';
import { GrlError } from '../../src/onnx/errors';
import { tensorToFloat32 } from '../../src/onnx/tensor';
import { train, TrainerOptions } from '../../src/train/trainer';
import { TrainingSession } from '../../src/train/session';
import { modelPath } from '../fixtures/reference';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'grl-export-fail-'));
afterEach(() => jest.restoreAllMocks());

function jsonl(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const ids = Array.from({ length: 3 + (i % 4) }, (_, k) => 1 + ((i * 7 + k * 13) % 127));
    lines.push(JSON.stringify({ input_ids: ids, attention_mask: ids.map(() => 1), token_type_ids: ids.map(() => 0), pos: ids.map((x) => x % 5), ner: ids.map((x) => (x < 64 ? 1 : 0)) }));
  }
  return `${lines.join('\n')}\n`;
}

function weights(file: string): Record<string, number[]> {
  const m = loadModel(file);
  return Object.fromEntries((m.proto.graph?.initializer ?? []).filter((t) => t.data_type === 1).map((t) => [t.name ?? '', Array.from(tensorToFloat32(t, m.baseDir))]));
}

it('an export that fails leaves the checkpoint and every metrics line; --resume exports the same weights', async () => {
  const dir = tmp();
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, jsonl(8));
  const opts = (out: string): TrainerOptions => ({ threads: 1, model: modelPath('tagger-opset17'), data, losses: [{ head: 'pos' }], optimizer: 'adamw', lr: 1e-2, batchSize: 4, seed: 1, steps: 3, out });
  await train(opts(path.join(dir, 'straight')));

  const run = path.join(dir, 'failed');
  const exportSpy = jest.spyOn(TrainingSession.prototype, 'exportModelForInferencing').mockRejectedValueOnce(new GrlError('disk full'));
  await expect(train(opts(run))).rejects.toThrow('disk full');
  expect(exportSpy).toHaveBeenCalledTimes(1);
  expect(fs.readdirSync(run).sort()).toEqual(['artifacts', 'checkpoint', 'metrics.jsonl']);
  const steps = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  expect(steps).toEqual([1, 2, 3]);

  const resumed = await train({ ...opts(run), resume: run });
  expect([resumed.startStep, resumed.steps, resumed.interrupted]).toEqual([3, 0, false]);
  expect(weights(path.join(run, 'model.onnx'))).toEqual(weights(path.join(dir, 'straight', 'model.onnx')));
  expect(fs.existsSync(path.join(run, 'run.json'))).toBe(true);
});
