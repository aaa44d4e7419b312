// `grl-onnx probe` in-process: features at the head's splice point of the
// shipped init tagger, a probe trained through TrainingSession, JSON output.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../src/cli/main';

const ROOT = path.join(__dirname, '..');
const MODEL = path.join(ROOT, 'models/tiny-tagger-init.onnx');

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } } };
}

describe('grl-onnx probe', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-probe-cli-'));
  const head = (file: string, n: number) => fs.readFileSync(path.join(ROOT, 'data', file), 'utf8').split('\n').slice(0, n).join('\n');
  beforeAll(() => {
    fs.mkdirSync(path.join(dir, 'alone'));
    fs.writeFileSync(path.join(dir, 'train.jsonl'), head('train.jsonl', 400));
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), head('dev.jsonl', 150));
    fs.writeFileSync(path.join(dir, 'alone', 'train.jsonl'), head('train.jsonl', 20));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('--json: held-out accuracy on dev.jsonl next to --data, majority, control and selectivity', async () => {
    const a = io();
    const code = await runCli(['probe', MODEL, '--data', path.join(dir, 'train.jsonl'), '--label', 'pos', '--control', '--epochs', '6', '--batch-size', '128', '--threads', '1', '--json'], a.io);
    expect(a.err.join('')).toBe('');
    expect(code).toBe(0);
    const r = JSON.parse(a.out.join(''));
    expect(r.eval).toBe(path.join(dir, 'dev.jsonl'));
    expect(r.head).toBe('pos');
    expect(r.tensor).toBe('/encoder/layer.1/ffn_norm/LayerNormalization_output_0');
    expect(r.dim).toBe(128);
    expect(r.numClasses).toBe(17);
    // Even a random encoder keeps word identity, and POS is mostly a function of the word.
    expect(r.accuracy).toBeGreaterThan(r.majority.accuracy + 0.2);
    expect(r.selectivity).toBeCloseTo(r.accuracy - r.control.accuracy, 12);
    const rows = fs.readFileSync(path.join(dir, 'dev.jsonl'), 'utf8').split('\n').filter(Boolean).reduce((n, l) => n + JSON.parse(l).pos.filter((y: number) => y !== -100).length, 0);
    expect(r.rows).toBe(rows);
  });

  test('human output and --at', async () => {
    const a = io();
    const code = await runCli(['probe', MODEL, '--data', path.join(dir, 'train.jsonl'), '--eval', path.join(dir, 'dev.jsonl'), '--label', 'ner', '--at', '/encoder/layer.0/ffn_norm/LayerNormalization_output_0', '--epochs', '1', '--threads', '1'], a.io);
    expect(code).toBe(0);
    const text = a.out.join('');
    expect(text).toContain("linear probe for 'ner' at /encoder/layer.0/ffn_norm/LayerNormalization_output_0");
    expect(text).toMatch(/majority\s+\d+\.\d\d%/);
    expect(text).not.toContain('control');
  });

  test('no held-out split is an error, and so is --eval equal to --data', async () => {
    const a = io();
    expect(await runCli(['probe', MODEL, '--data', path.join(dir, 'alone', 'train.jsonl'), '--label', 'pos'], a.io)).toBe(1);
    expect(a.err.join('')).toContain('no held-out split: give --eval FILE');
    const b = io();
    expect(await runCli(['probe', MODEL, '--data', path.join(dir, 'train.jsonl'), '--eval', path.join(dir, 'train.jsonl'), '--label', 'pos'], b.io)).toBe(1);
    expect(b.err.join('')).toContain('the held-out split must differ from --data');
  });
});
