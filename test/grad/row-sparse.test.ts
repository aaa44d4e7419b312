// Row-sparse embedding gradients (TrainingGraphOptions.rowSparseGradients, src/train/rows.ts):
// the graph outputs a lookup table's gradient as dY's rows and their indices; added into zeros
// they equal the dense gradient bit for bit; a table with another use keeps its dense
// gradient; and a TrainingSession on row-sparse artifacts trains exactly like one on dense
// artifacts, across steps that touch different rows and with gradient accumulation.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io';
import { Graph } from '../../src/onnx/graph';
import { buildTrainingGraph } from '../../src/grad/training';
import { differentiate } from '../../src/grad/backward';
import { generateArtifacts } from '../../src/train/artifacts';
import { TrainingSession } from '../../src/train/session';
import { scatterAddRows } from '../../src/train/rows';
import { F, I64, makeModel, randn, rng, valueInfo } from '../helpers/build';
import { serializeModel } from '../../src/onnx/io';
import { CHECKPOINT_VERSION, emptyProperties } from '../../src/train/checkpoint';
import { runTaggerTraining } from '../helpers/training';
import { modelPath } from '../fixtures/reference';
import { makeTensor } from '../../src/onnx/tensor';
import { DataType } from '../../src/onnx/proto';

const WORD = 'encoder.embeddings.word.weight';

describe('row-sparse gradients in the training graph', () => {
  const model = loadModel(modelPath('tagger-opset17'));
  const dense = buildTrainingGraph(model, { losses: [{ head: 'pos' }] });
  const sparse = buildTrainingGraph(model, { losses: [{ head: 'pos' }], rowSparseGradients: true });

  it('outputs the word table (128 rows) as rows + indices and keeps the one-hot tables (<= 64 rows) dense', () => {
    expect(sparse.outputs.rowGrads).toEqual({ [WORD]: { rows: `${WORD}_grad_rows`, indices: `${WORD}_grad_indices` } });
    expect(sparse.outputs.grads[WORD]).toBeUndefined();
    expect(Object.keys(sparse.outputs.grads)).toEqual(Object.keys(dense.outputs.grads).filter((p) => p !== WORD));
    expect(dense.outputs.rowGrads).toBeUndefined();
    const ops = sparse.training.graph!.node!.map((n) => n.op_type);
    expect(ops).not.toContain('ScatterElements');
    expect(dense.training.graph!.node!.map((n) => n.op_type)).toContain('ScatterElements');
  });

  it('rows added into zeros at their indices equal the dense gradient exactly, repeated ids included', async () => {
    const d = await runTaggerTraining(model, dense, 11, 4, 9);
    const s = await runTaggerTraining(model, sparse, 11, 4, 9) as unknown as Record<string, Float32Array | BigInt64Array>;
    const rows = s[`${WORD}_grad_rows`] as Float32Array;
    const indices = s[`${WORD}_grad_indices`] as BigInt64Array;
    expect(indices.length).toBe(4 * 9);
    expect(rows.length).toBe(4 * 9 * 32);
    expect(new Set(Array.from(indices, Number)).size).toBeLessThan(indices.length); // the batch repeats ids
    const got = new Float32Array(128 * 32);
    scatterAddRows(got, { name: WORD, offset: 0, rowCount: 128, width: 32 }, rows, indices);
    expect(Array.from(got)).toEqual(Array.from(d[dense.outputs.grads[WORD]]));
    // Every other gradient is untouched by the option.
    for (const p of Object.keys(sparse.outputs.grads)) expect([p, Array.from(s[sparse.outputs.grads[p]] as Float32Array)]).toEqual([p, Array.from(d[dense.outputs.grads[p]])]);
  });

  it('keeps the dense gradient of a table that is also used elsewhere (tied weights)', () => {
    // y = Gather(E, ids) ; logits = y @ E^T : E gets a scatter and a product.
    const V = 80;
    const D = 4;
    const proto = makeModel({
      nodes: [
        { op_type: 'Gather', input: ['E', 'ids'], output: ['y'] },
        { op_type: 'Transpose', input: ['E'], output: ['Et'] },
        { op_type: 'MatMul', input: ['y', 'Et'], output: ['logits'] },
        { op_type: 'Gather', input: ['F', 'ids'], output: ['z'] },
        { op_type: 'Add', input: ['logits', 'bias'], output: ['out'] },
        { op_type: 'ReduceSum', input: ['z'], output: ['zsum'] },
      ],
      inputs: [valueInfo('ids', I64, [2, 3])],
      outputs: [valueInfo('out', F, [2, 3, V]), valueInfo('zsum', F, [1, 1, 1])],
      initializers: [
        makeTensor('E', DataType.FLOAT, [V, D], randn(rng(1), V * D)),
        makeTensor('F', DataType.FLOAT, [V, D], randn(rng(2), V * D)),
        makeTensor('bias', DataType.FLOAT, [V], randn(rng(3), V)),
      ],
    });
    const g = new Graph(proto.graph!);
    const back = differentiate(g, { seeds: new Map([['out', 'dout'], ['zsum', 'dz']]), wrt: ['E', 'F'], opset: 17 });
    expect([...back.grads.keys()].sort()).toEqual(['E', 'F']);
    expect([...back.rowGrads.keys()]).toEqual(['F']);
  });
});

describe('TrainingSession on row-sparse artifacts', () => {
  const model = loadModel(modelPath('tagger-opset17'));
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const open = async (rowSparseGradients: boolean, optimizer: 'adamw' | 'sgd' = 'adamw') => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-rows-'));
    dirs.push(dir);
    const hyperparameters = optimizer === 'adamw' ? { weightDecay: 0.01 } : { weightDecay: 0 };
    generateArtifacts(model, { losses: [{ head: 'pos' }], optimizer, learningRate: optimizer === 'adamw' ? 0.01 : 1, hyperparameters, rowSparseGradients }, dir);
    return TrainingSession.create({ artifactsDir: dir }, { intraOpNumThreads: 1 });
  };
  /** A batch whose token ids come from [lo, hi): consecutive batches touch different rows. */
  const batch = (seed: number, lo: number, hi: number, B = 3, T = 6) => {
    const r = rng(seed);
    const ints = (f: () => number) => new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => BigInt(f())), [B, T]);
    return {
      input_ids: ints(() => lo + Math.floor(r() * (hi - lo))),
      attention_mask: ints(() => 1),
      token_type_ids: ints(() => 0),
      pos: ints(() => (r() < 0.1 ? -100 : Math.floor(r() * 17))),
    };
  };
  const weights = async (s: TrainingSession) => Array.from(await s.getContiguousParameters(true).then((t) => t.data as Float32Array));

  /** The same steps on a dense and a row-sparse session end with bit-identical weights. */
  const expectSameAsDense = async (optimizer: 'adamw' | 'sgd', steps: (s: TrainingSession) => Promise<void>) => {
    const dense = await open(false, optimizer);
    const sparse = await open(true, optimizer);
    expect(sparse.trainingOutputNames).toEqual(dense.trainingOutputNames);
    await steps(dense);
    await steps(sparse);
    expect(await weights(sparse)).toEqual(await weights(dense));
    await dense.release();
    await sparse.release();
  };
  const step = async (s: TrainingSession, ...micro: ReturnType<typeof batch>[]) => {
    for (const m of micro) await s.runTrainStep(m);
    if (micro.length > 1) s.scaleGradients(1 / micro.length);
    const applied = await s.runOptimizerStep();
    s.lazyResetGrad();
    return applied;
  };

  it('trains bit-identically to dense gradients over steps that touch different rows', async () => {
    await expectSameAsDense('adamw', async (s) => {
      for (const [seed, lo, hi] of [[1, 0, 40], [2, 40, 80], [3, 0, 128]]) await step(s, batch(seed, lo, hi));
    });
  });

  it('accumulates micro-batches bit-identically to dense gradients, ids repeating within and across them', async () => {
    // SGD with lr 1 and no decay: θ − g, so any difference in g shows in the weights.
    await expectSameAsDense('sgd', async (s) => {
      await step(s, batch(4, 0, 64));
      // Eight ids over 18 tokens per micro-batch: every row is hit several times in each.
      await step(s, batch(5, 0, 8), batch(6, 0, 8), batch(7, 4, 12));
      await step(s, batch(8, 100, 128));
    });
  });

  it('recovers from a non-finite gradient scale like dense gradients do (only written rows are scaled)', async () => {
    await expectSameAsDense('sgd', async (s) => {
      await s.runTrainStep(batch(9, 0, 40));
      s.scaleGradients(Infinity);
      expect(await s.runOptimizerStep()).toBe(false);
      s.skipOptimizerStep();
      expect(await step(s, batch(10, 40, 80))).toBe(true);
    });
  });
});

describe('TrainingSession with two row-sparse tables (a model that echoes its row outputs)', () => {
  const echo = makeModel({
    nodes: [
      { name: 'a', op_type: 'Identity', input: ['r1'], output: ['W1_grad_rows'] },
      { name: 'b', op_type: 'Identity', input: ['i1'], output: ['W1_grad_indices'] },
      { name: 'c', op_type: 'Identity', input: ['r2'], output: ['W2_grad_rows'] },
      { name: 'd', op_type: 'Identity', input: ['i2'], output: ['W2_grad_indices'] },
      { name: 'e', op_type: 'Add', input: ['W1', 'W2'], output: ['loss'] },
    ],
    inputs: [valueInfo('W1', F, [4, 2]), valueInfo('W2', F, [4, 2]), valueInfo('r1', F, ['n', 2]), valueInfo('i1', I64, ['n']), valueInfo('r2', F, ['n', 2]), valueInfo('i2', I64, ['n'])],
    outputs: [valueInfo('loss', F, [4, 2]), valueInfo('W1_grad_rows', F, ['n', 2]), valueInfo('W1_grad_indices', I64, ['n']), valueInfo('W2_grad_rows', F, ['n', 2]), valueInfo('W2_grad_indices', I64, ['n'])],
  });
  const checkpoint = () => ({ version: CHECKPOINT_VERSION, trainable: [{ name: 'W1', dims: [4, 2], data: new Float32Array(8) }, { name: 'W2', dims: [4, 2], data: new Float32Array(8) }], frozen: [], optimizerGroups: [], properties: emptyProperties() });
  const feeds = (v: number, i1: number, i2: number) => ({
    r1: new ort.Tensor('float32', Float32Array.of(v, v), [1, 2]), i1: new ort.Tensor('int64', BigInt64Array.of(BigInt(i1)), [1]),
    r2: new ort.Tensor('float32', Float32Array.of(v, v), [1, 2]), i2: new ort.Tensor('int64', BigInt64Array.of(BigInt(i2)), [1]),
  });
  const grads = (s: TrainingSession) => Array.from((s as unknown as { grads: Float32Array }).grads);

  it('finds the row outputs by name, and a bad second table writes nothing while accumulating', async () => {
    const s = await TrainingSession.create({ checkpointState: checkpoint(), trainModel: serializeModel(echo) }, { intraOpNumThreads: 1 });
    expect(s.trainingOutputNames).toEqual(['loss']);
    await s.runTrainStep(feeds(1, 0, 0));
    // W2's index 9 is outside its 4 rows: the step fails before W1's rows reach the scratch.
    await expect(s.runTrainStep(feeds(100, 3, 9))).rejects.toThrow("'W2': gradient row index 9 is outside [0, 4)");
    await s.runTrainStep(feeds(2, 1, 1));
    expect(grads(s)).toEqual([1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0]);
    await s.runTrainStep(feeds(3, 1, 2));
    expect(grads(s)).toEqual([1, 1, 5, 5, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 0, 0]);
    // A fresh step clears every row written since the last one, nothing else is left.
    s.lazyResetGrad();
    await s.runTrainStep(feeds(7, 3, 3));
    expect(grads(s)).toEqual([0, 0, 0, 0, 0, 0, 7, 7, 0, 0, 0, 0, 0, 0, 7, 7]);
    await s.release();
  });
});

describe('scatterAddRows', () => {
  const t = { name: 'E', offset: 2, rowCount: 3, width: 2 };
  it('adds rows at their indices after the offset, repeats adding up', () => {
    const buf = new Float32Array(8);
    scatterAddRows(buf, t, Float32Array.of(1, 2, 3, 4, 5, 6), BigInt64Array.of(2n, 0n, 2n));
    expect(Array.from(buf)).toEqual([0, 0, 3, 4, 0, 0, 6, 8]);
  });
  it('refuses an index outside the table and a row count that does not match', () => {
    expect(() => scatterAddRows(new Float32Array(8), t, Float32Array.of(1, 2), BigInt64Array.of(3n))).toThrow("'E': gradient row index 3 is outside [0, 3)");
    expect(() => scatterAddRows(new Float32Array(8), t, Float32Array.of(1, 2, 3), BigInt64Array.of(0n))).toThrow("'E': 1 row indices but 3 row values (rows of 2)");
  });
});
