// `grl-onnx erase --remove` in-process on the shipped tiny tagger: erase, then take the
// eraser out again. The result is the model before `erase`, byte for byte, and its
// onnxruntime outputs on real rows of data/dev.jsonl are bit-identical to the original's
// (while the erased model's are not); selecting one eraser by tensor or node name keeps
// the others; every bad input is one line, exit 1, and nothing is written.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel } from '../../src/onnx/io';
import { readErasers } from '../../src/erase/records';
import { cli } from '../helpers/cli';
import { runOrt } from '../helpers/models';

const ROOT = path.join(__dirname, '../..');
const MODEL = path.join(ROOT, 'models/tiny-tagger.onnx');
const T1 = '/encoder/layer.1/ffn_norm/LayerNormalization_output_0';
const T0 = '/encoder/layer.0/ffn_norm/LayerNormalization_output_0';
const LINES = fs.readFileSync(path.join(ROOT, 'data/dev.jsonl'), 'utf8').split('\n').filter(Boolean);

/** Rows of data/dev.jsonl as one padded batch of the tagger's three inputs. */
function devFeeds(rows: number): Record<string, ort.Tensor> {
  const recs = LINES.slice(0, rows).map((l) => JSON.parse(l) as Record<string, number[]>);
  const T = Math.max(...recs.map((r) => r.input_ids.length));
  const feeds: Record<string, ort.Tensor> = {};
  for (const k of ['input_ids', 'attention_mask', 'token_type_ids']) {
    const data = recs.flatMap((r) => [...r[k], ...new Array<number>(T - r[k].length).fill(0)]);
    feeds[k] = new ort.Tensor('int64', BigInt64Array.from(data, BigInt), [rows, T]);
  }
  return feeds;
}

const same = (a: Record<string, Uint8Array>, b: Record<string, Uint8Array>) =>
  Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => Buffer.from(a[k]).equals(Buffer.from(b[k])));

describe('grl-onnx erase --remove', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-erase-remove-'));
  const p = (f: string) => path.join(dir, f);
  const feeds = devFeeds(6);
  beforeAll(async () => {
    fs.writeFileSync(p('fit.jsonl'), LINES.slice(0, 120).join('\n'));
    // Two erasers: LEACE at the last layer's output, then random directions at the first layer's.
    const a = await cli(['erase', MODEL, '--data', p('fit.jsonl'), '--label', 'pos', '--method', 'leace', '--threads', '1', '-o', p('one.onnx')]);
    const b = await cli(['erase', p('one.onnx'), '--data', p('fit.jsonl'), '--label', 'pos', '--method', 'random', '--rank', '3', '--at', T0, '--threads', '1', '-o', p('two.onnx')]);
    expect([a.code, b.code, a.stderr + b.stderr]).toEqual([0, 0, `wrote ${p('one.onnx')}\nwrote ${p('two.onnx')}\n`]);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('without a value: every eraser goes, the file is the original byte for byte, the outputs bit-identical', async () => {
    const r = await cli(['erase', p('two.onnx'), '--remove', '-o', p('restored.onnx')]);
    expect([r.code, r.stderr]).toEqual([0, `wrote ${p('restored.onnx')}\n`]);
    expect(r.stdout).toMatch(new RegExp(`^removed the leace eraser at ${T1.replace(/[./]/g, '\\$&')} \\(rank \\d+ of 128; nodes erase/leace/MatMul, erase/leace/Add\\)\n` +
      `removed the random eraser at ${T0.replace(/[./]/g, '\\$&')} \\(rank 3 of 128; nodes erase/random/MatMul\\)\n$`));
    expect(fs.readFileSync(p('restored.onnx')).equals(fs.readFileSync(MODEL))).toBe(true);
    const inspect = await cli(['inspect', p('restored.onnx')]);
    expect([inspect.code, inspect.stdout.includes('eraser:')]).toEqual([0, false]);
    const original = await runOrt(MODEL, feeds);
    expect(same(await runOrt(p('restored.onnx'), feeds), original)).toBe(true);
    // The erasers did change the outputs, so the comparison above can fail.
    expect(same(await runOrt(p('two.onnx'), feeds), original)).toBe(false);
    expect(same(await runOrt(p('restored.onnx'), feeds, 'disabled'), await runOrt(MODEL, feeds, 'disabled'))).toBe(true);
  });

  test('by tensor: the later eraser goes and the file is the one-eraser model byte for byte; inspect lists what is left', async () => {
    const r = await cli(['erase', p('two.onnx'), '--remove', T0, '-o', p('minus-random.onnx')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`removed the random eraser at ${T0} (rank 3 of 128; nodes erase/random/MatMul)\n  kept the leace eraser at ${T1}\n`);
    expect(fs.readFileSync(p('minus-random.onnx')).equals(fs.readFileSync(p('one.onnx')))).toBe(true);
    const before = await cli(['inspect', p('two.onnx')]);
    const after = await cli(['inspect', p('minus-random.onnx')]);
    expect(before.stdout.split('\n').filter((l) => l.startsWith('  eraser: ')).map((l) => l.split(',')[0])).toEqual([`  eraser: leace at '${T1}'`, `  eraser: random at '${T0}'`]);
    expect(after.stdout.split('\n').filter((l) => l.startsWith('  eraser: ')).map((l) => l.split(',')[0])).toEqual([`  eraser: leace at '${T1}'`]);
  });

  test('by node name (--json), and --at as the selector: the earlier eraser goes, the later one stays and still erases', async () => {
    const r = await cli(['erase', p('two.onnx'), '--remove', 'erase/leace/Add', '--json', '-o', p('minus-leace.onnx')]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.removed.map((e: { method: string; tensor: string }) => [e.method, e.tensor])).toEqual([['leace', T1]]);
    expect(j.remaining.map((e: { method: string; tensor: string }) => [e.method, e.tensor])).toEqual([['random', T0]]);
    expect(readErasers(loadModel(p('minus-leace.onnx')).proto)).toEqual(j.remaining);
    const viaAt = await cli(['erase', p('two.onnx'), '--remove', '--at', T1, '-o', p('minus-leace-at.onnx')]);
    expect(viaAt.code).toBe(0);
    expect(fs.readFileSync(p('minus-leace-at.onnx')).equals(fs.readFileSync(p('minus-leace.onnx')))).toBe(true);
    // Removing the random eraser from it as well gives the original again.
    const all = await cli(['erase', p('minus-leace.onnx'), '--remove', '-o', p('none.onnx')]);
    expect(all.code).toBe(0);
    expect(fs.readFileSync(p('none.onnx')).equals(fs.readFileSync(MODEL))).toBe(true);
    expect(same(await runOrt(p('minus-leace.onnx'), feeds), await runOrt(MODEL, feeds))).toBe(false);
  });

  test.each([
    ['a model without an eraser', () => [MODEL, '--remove'], /tiny-tagger\.onnx: the model has no eraser \(no grl-onnx\.erasers metadata\); there is nothing to remove$/],
    ['an eraser that is not there', () => [p('two.onnx'), '--remove', 'nope'],
      new RegExp(`two\\.onnx: no eraser at tensor or node 'nope'; the model has leace at '${T1.replace(/[./]/g, '\\$&')}', random at '${T0.replace(/[./]/g, '\\$&')}'$`)],
    ['fitting options', () => [p('two.onnx'), '--remove', '--method', 'leace', '--label', 'pos'], /^grl-onnx: --remove fits nothing: drop --label, --method$/],
    ['--remove and --at naming different erasers', () => [p('two.onnx'), '--remove', T0, '--at', T1], /--remove '.*' and --at '.*' name different erasers; give one$/],
    ['fitting without --data, --label, --method', () => [p('two.onnx')], /^grl-onnx: Missing required arguments: data, label, method \(to fit an eraser; --remove takes erasers out\)$/],
  ])('%s: one line, exit 1, nothing written', async (_what, args, message) => {
    const r = await cli(['erase', ...args(), '-o', p('bad.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(fs.existsSync(p('bad.onnx'))).toBe(false);
  });

  test.each([
    ['[{}]', "1 of the 1 entries of its grl-onnx.erasers metadata is not an eraser record"],
    ['[null, 1]', "2 of the 2 entries of its grl-onnx.erasers metadata are not eraser records"],
    ['[{"tensor":"x","nodes":"abc"}]', "1 of the 1 entries of its grl-onnx.erasers metadata is not an eraser record"],
    ['{"a":1}', 'its grl-onnx.erasers metadata is not a JSON array'],
  ])('eraser metadata %s (hand-edited or foreign): --remove is one line, exit 1, nothing written; inspect still reads the model', async (value, why) => {
    const m = loadModel(MODEL);
    m.proto.metadata_props = [...(m.proto.metadata_props ?? []), { key: 'grl-onnx.erasers', value }];
    saveModel(m, p('odd.onnx'));
    for (const which of [[], ['x']]) {
      const r = await cli(['erase', p('odd.onnx'), '--remove', ...which, '-o', p('bad.onnx')]);
      expect([r.code, r.stderr]).toEqual([1, `grl-onnx: ${p('odd.onnx')}: ${why}; erasers cannot be taken out of it safely\n`]);
      expect(fs.existsSync(p('bad.onnx'))).toBe(false);
    }
    const inspect = await cli(['inspect', p('odd.onnx')]);
    expect([inspect.code, inspect.stderr, inspect.stdout.includes('eraser:')]).toEqual([0, '', false]);
  });

  test('never overwrites the input', async () => {
    fs.copyFileSync(p('two.onnx'), p('copy.onnx'));
    const r = await cli(['erase', p('copy.onnx'), '--remove', '-o', p('copy.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to overwrite the input model');
    expect(fs.readFileSync(p('copy.onnx')).equals(fs.readFileSync(p('two.onnx')))).toBe(true);
  });
});
