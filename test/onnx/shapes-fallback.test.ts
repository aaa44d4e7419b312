// Rank inference that does not give up: a Reshape to a shape computed through
// Compress (data-dependent length, so no static rule can know the target's
// length) has an unknown rank statically. observeUnknownRanks reads it from two
// onnxruntime runs; with those hints the training graph builds and computes the
// same gradients as the same model with a constant reshape target.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { runCli, CliIO } from '../../src/cli/main';
import { Model } from '../../src/onnx/io';
import { NodeProto } from '../../src/onnx/proto';
import { makeTensor } from '../../src/onnx/tensor';
import { inferShapes, observeUnknownRanks, rankReport, unknownRankTensors } from '../../src/onnx/shapes';
import { buildTrainingGraph } from '../../src/grad/training';
import { inspectModel } from '../../src/inspect/inspect';
import { formatInspectReport } from '../../src/inspect/format';
import { serializeModel, loadModel } from '../../src/onnx/io';
import { BOOL, F, I64, makeModel, randn, rng, valueInfo } from '../helpers/build';
import { modelFromProto } from '../helpers/models';

const W = randn(rng(3), 12, 0.5);

/** x [batch, 6] -> Reshape to [batch, 2, 3] -> MatMul W [3, 4] -> out_logits [batch, 2, 4]. */
function model(computedTarget: boolean): Model {
  const nodes: NodeProto[] = computedTarget
    ? [
      { name: 'shape', op_type: 'Shape', input: ['x'], output: ['s'] },
      { name: 'keep_batch', op_type: 'Compress', input: ['s', 'keep'], output: ['k'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
      { name: 'target', op_type: 'Concat', input: ['k', 'tail'], output: ['t'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
    ]
    : [];
  nodes.push(
    { name: 'reshape', op_type: 'Reshape', input: ['x', computedTarget ? 't' : 'fixed'], output: ['y'] },
    { name: 'project', op_type: 'MatMul', input: ['y', 'W'], output: ['out_logits'] },
  );
  return modelFromProto(makeModel({
    nodes,
    inputs: [valueInfo('x', F, ['batch', 6])],
    outputs: [valueInfo('out_logits', F, ['batch', 2, 4])],
    initializers: [
      makeTensor('W', F, [3, 4], W),
      makeTensor('keep', BOOL, [2], Uint8Array.of(1, 0)),
      makeTensor('tail', I64, [2], BigInt64Array.of(2n, 3n)),
      makeTensor('fixed', I64, [3], BigInt64Array.of(0n, 2n, 3n)),
    ],
  }));
}

describe('the onnxruntime rank fallback', () => {
  const m = model(true);

  it('static inference leaves the reshape rank unknown and names the nodes that blocked it', () => {
    const shapes = inferShapes(m.proto.graph!);
    expect(shapes.shape('y')).toBeUndefined();
    // The Concat's rank is known (1-D), its length is not: so Reshape cannot know its output's rank.
    expect(shapes.shape('t')).toEqual([null]);
    expect(unknownRankTensors(m, shapes)).toEqual(['k', 'y']);
    const r = rankReport(m.proto.graph!, shapes);
    expect(r.unknown).toEqual(['k', 'y']);
    expect(r.static).toBe(3); // s, t and out_logits (declared as a graph output)
    expect(r.blockers).toEqual([
      { node: 'keep_batch', op: 'Compress', domain: '', tensors: 1, example: 'k' },
      { node: 'reshape', op: 'Reshape', domain: '', tensors: 1, example: 'y' },
    ]);
  });

  it('reads the ranks, and the dims that stay equal across two batch sizes, from onnxruntime', async () => {
    const observed = await observeUnknownRanks(m);
    expect(observed.error).toBeUndefined();
    expect(observed.asked).toBe(2);
    expect([...observed.hints]).toEqual([['k', [1]], ['y', [null, 2, 3]]]);
    const shapes = inferShapes(m.proto.graph!, observed.hints);
    // k's observed length makes t's length static, so Reshape's rule decides y's rank itself;
    // y's observed dims fill the ones it cannot know.
    expect(shapes.rankSource('k')).toBe('onnxruntime');
    expect(shapes.shape('t')).toEqual([3]);
    expect(shapes.shape('y')).toEqual([null, 2, 3]);
    expect(shapes.rankSource('y')).toBe('static');
    const r = rankReport(m.proto.graph!, shapes);
    expect([r.static, r.onnxruntime, r.unknown.length]).toEqual([4, 1, 0]);
  });

  it('makes no run when every rank is static', async () => {
    expect(await observeUnknownRanks(model(false))).toEqual({ hints: new Map(), asked: 0 });
  });

  it('reports a run that fails instead of throwing', async () => {
    const bad = model(true);
    bad.proto.graph!.initializer = bad.proto.graph!.initializer!.filter((t) => t.name !== 'keep');
    const observed = await observeUnknownRanks(bad);
    expect(observed.hints.size).toBe(0);
    expect(observed.asked).toBe(2);
    expect(observed.error).toMatch(/onnxruntime cannot load it/);
  });

  it('training needs the rank: without hints the build fails naming the tensor, with them it matches the static model bit for bit', async () => {
    const losses = [{ head: 'out' }];
    expect(() => buildTrainingGraph(m, { losses })).toThrow("MatMul node 'project': the rank of 'y' is unknown");
    const { hints } = await observeUnknownRanks(m);
    const withHints = buildTrainingGraph(m, { losses, shapeHints: hints });
    const reference = buildTrainingGraph(model(false), { losses });
    const x = randn(rng(5), 3 * 6);
    const grads: Float32Array[] = [];
    for (const tg of [withHints, reference]) {
      const s = await ort.InferenceSession.create(serializeModel(tg.training));
      const feeds: Record<string, ort.Tensor> = {
        x: new ort.Tensor('float32', x, [3, 6]),
        [tg.heads[0].labelInput]: new ort.Tensor('int64', BigInt64Array.of(0n, 3n, 1n, -100n, 2n, 2n), [3, 2]),
        W: new ort.Tensor('float32', W, [3, 4]),
      };
      const out = await s.run(feeds);
      grads.push(out[tg.outputs.grads.W].data as Float32Array);
      await s.release();
    }
    expect(grads[0].length).toBe(12);
    expect(Array.from(grads[0])).toEqual(Array.from(grads[1]));
    expect(grads[0].some((g) => g !== 0)).toBe(true);
  });

  it('inspect: without the run, a finding before training names the op; with it, how each rank was obtained', async () => {
    const before = formatInspectReport(inspectModel(m));
    expect(before).toContain('  ranks: 3 static, 2 unknown\n');
    // Only y is read on a gradient path (MatMul's gradient for W needs its rank); k is not.
    expect(before).toContain("  rank unknown on a gradient path (training would fail): Reshape node 'reshape' (1 tensor, e.g. 'y')\n");
    const after = inspectModel(m, await observeUnknownRanks(m));
    expect(after.ranks).toEqual({ static: 4, onnxruntime: 1, unknown: 0, blocking: [] });
    expect(formatInspectReport(after)).toContain('  ranks: 4 static, 1 from an onnxruntime run\n');
    expect(formatInspectReport(after)).not.toContain('rank unknown');
  });

  it('the CLI uses the run: inspect reports it, artifacts builds the training graph', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-ranks-'));
    try {
      const file = path.join(dir, 'computed-reshape.onnx');
      fs.writeFileSync(file, serializeModel(m.proto));
      let out = '';
      let err = '';
      const io: CliIO = { stdout: { write: (c) => { out += String(c); } }, stderr: { write: (c) => { err += c; } } };
      expect(await runCli(['inspect', file], io)).toBe(0);
      expect(out).toContain('  ranks: 4 static, 1 from an onnxruntime run\n');
      out = '';
      expect([await runCli(['artifacts', file, '--loss', 'out', '-o', path.join(dir, 'art')], io), err]).toEqual([0, '']);
      const training = loadModel(path.join(dir, 'art', 'training_model.onnx'));
      expect((training.proto.graph?.output ?? []).map((o) => o.name)).toContain('W_grad');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
