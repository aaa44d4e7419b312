// LEACE on real encodings: the shipped tiny tagger's hidden states at the pos
// head's splice point over a sample of data/dev.jsonl (about 3,400 labelled
// tokens, 17 POS classes, d = 128). The guarantees of the synthetic test hold, and
// the eraser spliced by eraseModel gives the same erased encodings through ORT.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../src/onnx/io';
import type { Model } from '../../src/onnx/io';
import { Graph } from '../../src/onnx/graph';
import { DataType } from '../../src/onnx/proto';
import { readErasers } from '../../src/erase/records';
import { parseJsonl } from '../../src/data/jsonl';
import { extractFeatures } from '../../src/probe/features';
import type { Features } from '../../src/probe/features';
import { trainProbe } from '../../src/probe/probe';
import { majorityBaseline } from '../../src/probe/baselines';
import { erasureTarget } from '../../src/erase/target';
import { fitLeace } from '../../src/erase/leace';
import { applyEraser, denseEraser } from '../../src/erase/eraser';
import { eraseModel } from '../../src/erase/run';
import { classMeans, leastSquaresProbe, maxAbsDiff, maxMeanGap } from './helpers';

const ROOT = path.join(__dirname, '../..');
const TAGGER = loadModel(path.join(ROOT, 'models/tiny-tagger.onnx'));
const C = 17;

describe('LEACE on the tiny tagger\'s encodings (pos)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-erase-real-'));
  const file = path.join(dir, 'sample.jsonl');
  const target = erasureTarget(TAGGER, 'pos');
  let f: Features;
  let erased: Float32Array;
  let fit: ReturnType<typeof fitLeace>;
  let majority: number;
  beforeAll(async () => {
    fs.writeFileSync(file, fs.readFileSync(path.join(ROOT, 'data/dev.jsonl'), 'utf8').split('\n').slice(0, 250).join('\n'));
    f = await extractFeatures(TAGGER, parseJsonl(fs.readFileSync(file, 'utf8'), file, target.spec), target.spec, { tensor: target.tensor, label: 'pos', tokenLevel: true });
    fit = fitLeace(f.x, f.y, f.dim, C);
    erased = applyEraser(fit.eraser, f.x, f.rows);
    majority = majorityBaseline(f.y, f.y, C).accuracy;
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the default tensor is the hidden state both heads read', () => {
    expect(target.tensor).toBe('/encoder/layer.1/ffn_norm/LayerNormalization_output_0');
    expect(f.dim).toBe(128);
    expect(f.rows).toBeGreaterThan(3000);
  });

  test('class-conditional means are equal after erasure (max gap < 1e-3; before: > 1)', () => {
    expect(maxMeanGap(f.x, f.y, f.dim, C)).toBeGreaterThan(1);
    expect(maxMeanGap(erased, f.y, f.dim, C)).toBeLessThan(1e-3);
  });

  test('unconditional mean unchanged, idempotent, rank ≤ classes − 1', () => {
    expect(maxAbsDiff(classMeans(erased, f.y, f.dim, C).all, classMeans(f.x, f.y, f.dim, C).all)).toBeLessThan(1e-4);
    expect(maxAbsDiff(applyEraser(fit.eraser, erased, f.rows), erased)).toBeLessThan(1e-3);
    expect(fit.eraser.rank).toBeLessThanOrEqual(C - 1);
  });

  test('least squares: decodes pos before; after, predictions are constant (majority)', () => {
    const before = leastSquaresProbe(f.x, f.y, f.dim, C);
    expect(before.accuracy).toBeGreaterThan(majority + 0.5);
    const after = leastSquaresProbe(erased, f.y, f.dim, C);
    expect(after.accuracy).toBeLessThanOrEqual(majority + 0.005);
  });

  test('the project\'s linear probe learns pos before (> majority + 50 pp) and not after (≤ majority + 2 pp, on the fit rows)', async () => {
    const opts = { numClasses: C, epochs: 8, lr: 1e-2, batchSize: 128, seed: 2 };
    const before = await trainProbe(f, f, opts);
    expect(before.accuracy).toBeGreaterThan(majority + 0.5);
    const after = await trainProbe({ ...f, x: erased }, { ...f, x: erased }, opts);
    expect(after.accuracy).toBeLessThanOrEqual(majority + 0.02);
  });

  test('eraseModel splices the same eraser: the erased model\'s encodings at the tensor match it', async () => {
    const r = await eraseModel(TAGGER, { data: file, label: 'pos', method: 'leace' });
    expect(r.record.fit).toMatchObject({ label: 'pos', data: file, rows: f.rows, classes: C });
    expect(r.record.fit.dataSha256).toMatch(/^[0-9a-f]{64}$/);
    const g = await extractFeatures(r.model, parseJsonl(fs.readFileSync(file, 'utf8'), file, target.spec), target.spec, { tensor: target.tensor, label: 'pos', tokenLevel: true });
    expect(g.rows).toBe(f.rows);
    expect(maxAbsDiff(g.x, erased)).toBeLessThan(1e-4);
  });

  test('eraseModel streams LEACE in chunks of examples: the same eraser as fitting all rows at once', async () => {
    const r = await eraseModel(TAGGER, { data: file, label: 'pos', method: 'leace', streamExamples: 37 });
    expect(r.rows).toEqual({ available: f.rows, used: f.rows });
    const a = denseEraser(r.fit.eraser);
    const b = denseEraser(fit.eraser);
    expect(maxAbsDiff(a.p, b.p)).toBeLessThan(1e-9);
    expect(maxAbsDiff(a.c as Float64Array, b.c as Float64Array)).toBeLessThan(1e-9);
  });

  test('an encoder-only model (no heads, output last_hidden_state): default tensor and classes come from it and the data', async () => {
    const enc = encoderOnly(TAGGER, target.tensor);
    const t = erasureTarget(enc, 'pos');
    expect(t).toMatchObject({ tensor: 'last_hidden_state', label: 'pos', tokenLevel: true });
    expect(t.numClasses).toBeUndefined();
    const r = await eraseModel(enc, { data: file, label: 'pos', method: 'leace' });
    expect(r.record).toMatchObject({ tensor: 'last_hidden_state', input: 'last_hidden_state/before_erase', output: 'last_hidden_state' });
    expect(r.fit.numClasses).toBe(Math.max(...f.y) + 1);
    expect(readErasers(r.model.proto)).toHaveLength(1);
    const g = await extractFeatures(r.model, parseJsonl(fs.readFileSync(file, 'utf8'), file, t.spec), t.spec, { tensor: 'last_hidden_state', label: 'pos', tokenLevel: true });
    expect(maxMeanGap(g.x, g.y, g.dim, r.fit.numClasses)).toBeLessThan(1e-3);
  });
});

/** The tagger cut at its hidden states: one output, `last_hidden_state`, and no heads. */
function encoderOnly(model: Model, hidden: string): Model {
  const g = model.proto.graph ?? {};
  const out = { name: 'last_hidden_state', type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'batch' }, { dim_param: 'sequence' }, { dim_value: 128 }] } } } };
  const graph = new Graph({ ...g, node: [...(g.node ?? []), { name: '/identity', op_type: 'Identity', input: [hidden], output: ['last_hidden_state'] }], output: [out] });
  graph.removeDeadNodes();
  const used = new Set(graph.nodes.flatMap((n) => n.input ?? []));
  return { ...model, proto: { ...model.proto, graph: { ...graph.proto, initializer: (g.initializer ?? []).filter((t) => used.has(t.name ?? '')) } }, source: 'encoder.onnx' };
}
