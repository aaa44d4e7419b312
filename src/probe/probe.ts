// Probing, step 2: train a FRESH probe (linear or one-hidden-layer MLP) on frozen
// encodings and score it on a held-out split. The probe is a tiny ONNX graph
// (`features` [batch, dim] → `probe_logits` [batch, C]) trained through our own
// buildTrainingGraph + TrainingSession, so the probe uses exactly the gradient
// and optimizer code the tool ships; no optimizer loop is written in JS.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { DataType, NodeProto, TensorProto } from '../onnx/proto';
import { float32Tensor } from '../onnx/tensor';
import { buildTrainingGraph } from '../grad/training';
import { writeArtifacts } from '../train/artifacts';
import { TrainingSession } from '../train/session';
import { Rng } from '../data/jsonl';
import type { Features } from './features';
import { Majority, controlTask, majorityBaseline } from './baselines';
import { SpanReport, scoreRows } from '../metrics';

export type ProbeKind = 'linear' | 'mlp';

/** Rows of features and one class id per row. */
export interface ProbeData {
  x: Float32Array;
  rows: number;
  dim: number;
  y: ArrayLike<number>;
  /** The example of each row (consecutive rows of one example), for entity-span scores. */
  example?: ArrayLike<number>;
}

export interface ProbeTrainOptions {
  numClasses: number;
  kind?: ProbeKind;
  /** MLP hidden width (default 128). */
  hidden?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  seed?: number;
  threads?: number;
  /** Weight initialisation (default xavier). `zeros` keeps a linear probe's weights in the span of the data (INLP relies on it). */
  init?: ProbeInit;
  /** Also return the trained parameters by name (e.g. `probe.weight` [dim, C]). */
  returnParameters?: boolean;
  /** Class names; BIO-style names add entity-span scores over the held-out examples. */
  labelNames?: readonly string[];
}

export type ProbeInit = 'xavier' | 'zeros';

export interface ProbeScores {
  accuracy: number;
  /** Macro-averaged F1 over the classes present in gold or predictions. */
  macroF1: number;
  /** Accuracy on rows whose gold label is not `majorityLabel` (entity tokens for ner). */
  nonMajorityAccuracy: number;
  rows: number;
  /** With BIO-style label names and token rows: seqeval/conlleval entity-span scores (src/metrics/spans.ts). */
  spans?: SpanReport;
}

export interface ProbeTrainResult extends ProbeScores {
  trainAccuracy: number;
  /** Mean training loss of each epoch. */
  epochLoss: number[];
  steps: number;
  /** With `returnParameters`: the trained parameters, row-major, by initializer name. */
  parameters?: Record<string, Float32Array>;
}

export const PROBE_INPUT = 'features';
export const PROBE_OUTPUT = 'probe_logits';
export const PROBE_HEAD = 'probe';

/** Normal(0, 1) from two uniforms (Box–Muller), driven by our seeded Rng. */
export function gaussian(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Weight [fanIn, fanOut] with Xavier-normal values (keeps the probe's logits O(1) whatever the encoder scale). */
function xavierTensor(name: string, fanIn: number, fanOut: number, rng: Rng): TensorProto {
  const std = Math.sqrt(2 / (fanIn + fanOut));
  const v = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < v.length; i++) v[i] = std * gaussian(rng);
  return float32Tensor(name, [fanIn, fanOut], v);
}

/** The probe as an ONNX model: linear = MatMul + Add; mlp = Linear → Relu → Linear. Seeded init. */
export function buildProbeModel(dim: number, numClasses: number, opts: { kind?: ProbeKind; hidden?: number; seed?: number; init?: ProbeInit } = {}): Model {
  const kind = opts.kind ?? 'linear';
  const rng = new Rng(opts.seed ?? 0);
  const xavier = opts.init === 'zeros' ? (name: string, fanIn: number, fanOut: number) => float32Tensor(name, [fanIn, fanOut], new Float32Array(fanIn * fanOut)) : xavierTensor;
  const node = (op: string, input: string[], output: string): NodeProto => ({ name: `/probe/${output}`, op_type: op, input, output: [output], attribute: [] });
  let nodes: NodeProto[];
  let inits: TensorProto[];
  if (kind === 'linear') {
    inits = [xavier('probe.weight', dim, numClasses, rng), float32Tensor('probe.bias', [numClasses], new Float32Array(numClasses))];
    nodes = [node('MatMul', [PROBE_INPUT, 'probe.weight'], 'probe/matmul'), node('Add', ['probe/matmul', 'probe.bias'], PROBE_OUTPUT)];
  } else if (kind === 'mlp') {
    const h = opts.hidden ?? 128;
    inits = [
      xavier('probe.hidden.weight', dim, h, rng), float32Tensor('probe.hidden.bias', [h], new Float32Array(h)),
      xavier('probe.out.weight', h, numClasses, rng), float32Tensor('probe.out.bias', [numClasses], new Float32Array(numClasses)),
    ];
    nodes = [
      node('MatMul', [PROBE_INPUT, 'probe.hidden.weight'], 'probe/hidden/matmul'),
      node('Add', ['probe/hidden/matmul', 'probe.hidden.bias'], 'probe/hidden/add'),
      node('Relu', ['probe/hidden/add'], 'probe/hidden/relu'),
      node('MatMul', ['probe/hidden/relu', 'probe.out.weight'], 'probe/out/matmul'),
      node('Add', ['probe/out/matmul', 'probe.out.bias'], PROBE_OUTPUT),
    ];
  } else {
    throw new GrlError(`unknown probe kind '${String(kind)}' (expected linear or mlp)`);
  }
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  });
  return {
    proto: {
      ir_version: 8,
      producer_name: 'grl-onnx-probe',
      opset_import: [{ domain: '', version: 17 }],
      graph: { name: `probe_${kind}`, node: nodes, input: [vi(PROBE_INPUT, ['batch', dim])], output: [vi(PROBE_OUTPUT, ['batch', numClasses])], initializer: inits },
    },
    source: `<${kind} probe>`,
    unknownFields: [],
  };
}

function checkData(d: ProbeData, what: string, numClasses: number): void {
  if (d.x.length !== d.rows * d.dim) throw new GrlError(`${what} features: ${d.x.length} values is not rows × dim = ${d.rows} × ${d.dim}`);
  if (d.y.length !== d.rows) throw new GrlError(`${what} features: ${d.y.length} labels for ${d.rows} rows`);
  for (let i = 0; i < d.rows; i++) {
    const y = d.y[i];
    if (!(y >= 0 && y < numClasses)) throw new GrlError(`${what} features: label ${y} of row ${i} is outside [0, ${numClasses})`);
  }
}

function slice(d: ProbeData, idx: ArrayLike<number>): { x: ort.Tensor; y: ort.Tensor } {
  const x = new Float32Array(idx.length * d.dim);
  const y = new BigInt64Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const r = idx[k];
    x.set(d.x.subarray(r * d.dim, (r + 1) * d.dim), k * d.dim);
    y[k] = BigInt(d.y[r]);
  }
  return { x: new ort.Tensor('float32', x, [idx.length, d.dim]), y: new ort.Tensor('int64', y, [idx.length]) };
}

/**
 * Accuracy, macro-F1 (src/metrics/) and non-majority accuracy of predictions against gold
 * labels; entity-span scores too when `spans` gives BIO-style names and the rows' examples.
 */
export function scorePredictions(gold: ArrayLike<number>, pred: ArrayLike<number>, numClasses: number, majorityLabel: number, spans?: { names?: readonly string[]; example?: ArrayLike<number> }): ProbeScores {
  const scores = scoreRows(gold, pred, numClasses, { names: spans?.names, example: spans?.example, spans: spans?.example ? 'auto' : 'off' });
  let minority = 0;
  let minorityHit = 0;
  for (let i = 0; i < gold.length; i++) {
    if (gold[i] === majorityLabel) continue;
    minority++;
    if (gold[i] === pred[i]) minorityHit++;
  }
  return {
    accuracy: scores.classes.microF1,
    macroF1: scores.classes.macroF1,
    nonMajorityAccuracy: minority ? minorityHit / minority : 0,
    rows: gold.length,
    ...(scores.spans ? { spans: scores.spans } : {}),
  };
}

/** Train a fresh probe on `train` and score it on `test`. Deterministic for a seed. */
export async function trainProbe(train: ProbeData, test: ProbeData, opts: ProbeTrainOptions): Promise<ProbeTrainResult> {
  const C = opts.numClasses;
  checkData(train, 'training', C);
  checkData(test, 'held-out', C);
  if (train.dim !== test.dim) throw new GrlError(`probe: training features have dim ${train.dim} but held-out features have dim ${test.dim}`);
  if (!train.rows || !test.rows) throw new GrlError('probe: no labelled rows to train or test on');
  const seed = opts.seed ?? 0;
  const model = buildProbeModel(train.dim, C, { kind: opts.kind, hidden: opts.hidden, seed, init: opts.init });
  const tg = buildTrainingGraph(model, { losses: [{ head: PROBE_HEAD }], rowSparseGradients: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-probe-'));
  let session: TrainingSession | undefined;
  try {
    writeArtifacts(model, tg, { optimizer: 'adamw', learningRate: opts.lr ?? 3e-3, hyperparameters: { weightDecay: opts.weightDecay ?? 0 } }, dir);
    session = await TrainingSession.create({ artifactsDir: dir }, { intraOpNumThreads: opts.threads ?? 1 });
    const bs = Math.max(1, opts.batchSize ?? 256);
    const epochs = Math.max(1, opts.epochs ?? 4);
    const lossName = tg.outputs.loss;
    const correctName = tg.outputs.correct[PROBE_HEAD];
    const epochLoss: number[] = [];
    let steps = 0;
    let correct = 0;
    let seen = 0;
    for (let e = 0; e < epochs; e++) {
      const order = new Rng((seed * 1000003 + e * 7919 + 17) >>> 0).permutation(train.rows);
      let sum = 0;
      let n = 0;
      for (let s = 0; s < train.rows; s += bs) {
        const idx = order.slice(s, s + bs);
        const b = slice(train, idx);
        await session.lazyResetGrad();
        const out = await session.runTrainStep({ [PROBE_INPUT]: b.x, [PROBE_HEAD]: b.y });
        await session.runOptimizerStep();
        const loss = (out[lossName].data as Float32Array)[0];
        if (!Number.isFinite(loss)) throw new GrlError(`probe: non-finite loss at epoch ${e + 1}, step ${steps + 1}; lower the probe learning rate`);
        sum += loss * idx.length;
        n += idx.length;
        if (e === epochs - 1) {
          correct += (out[correctName].data as Float32Array)[0];
          seen += idx.length;
        }
        steps++;
      }
      epochLoss.push(sum / n);
    }
    // Held-out predictions from the eval graph's logits.
    const pred = new Int32Array(test.rows);
    const all = Array.from({ length: test.rows }, (_, i) => i);
    for (let s = 0; s < test.rows; s += 1024) {
      const idx = all.slice(s, s + 1024);
      const b = slice(test, idx);
      const logits = (await session.runEvalStep({ [PROBE_INPUT]: b.x, [PROBE_HEAD]: b.y }))[PROBE_OUTPUT].data as Float32Array;
      for (let k = 0; k < idx.length; k++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[k * C + c] > logits[k * C + best]) best = c;
        pred[idx[k]] = best;
      }
    }
    const majority = majorityBaseline(train.y, test.y, C).label;
    const parameters = opts.returnParameters ? await trainedParameters(session) : undefined;
    return { ...scorePredictions(test.y, pred, C, majority, { names: opts.labelNames, example: test.example }), trainAccuracy: seen ? correct / seen : 0, epochLoss, steps, ...(parameters ? { parameters } : {}) };
  } finally {
    await session?.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function trainedParameters(session: TrainingSession): Promise<Record<string, Float32Array>> {
  const flat = (await session.getContiguousParameters()).data as Float32Array;
  const out: Record<string, Float32Array> = {};
  for (const slot of session.parameterLayout) out[slot.name] = flat.slice(slot.offset, slot.offset + slot.size);
  return out;
}

export interface ProbeReport extends ProbeScores {
  kind: ProbeKind;
  numClasses: number;
  trainRows: number;
  dim: number;
  trainAccuracy: number;
  epochLoss: number[];
  majority: Majority;
  /** Present with `control`: the same probe recipe on Hewitt & Liang control labels. */
  control?: { accuracy: number; majority: number; trainAccuracy: number };
  /** task accuracy − control accuracy. */
  selectivity?: number;
}

export interface RunProbeOptions extends ProbeTrainOptions {
  control?: boolean;
  /** Use at most this many training rows (a seeded sample), to bound probe time. */
  maxTrainRows?: number;
}

export function sampleRows(f: Features, max: number | undefined, seed: number): Features {
  if (!max || f.rows <= max) return f;
  const idx = new Rng((seed * 48271 + 11) >>> 0).permutation(f.rows).slice(0, max).sort((a, b) => a - b);
  const x = new Float32Array(idx.length * f.dim);
  idx.forEach((r, k) => x.set(f.x.subarray(r * f.dim, (r + 1) * f.dim), k * f.dim));
  return { x, rows: idx.length, dim: f.dim, y: Int32Array.from(idx, (r) => f.y[r]), wordIds: Int32Array.from(idx, (r) => f.wordIds[r]), ...(f.example ? { example: Int32Array.from(idx, (r) => f.example![r]) } : {}) };
}

/** A task probe, its majority baseline and (optionally) the control task and selectivity. */
export async function runProbe(trainF: Features, testF: Features, opts: RunProbeOptions): Promise<ProbeReport> {
  const seed = opts.seed ?? 0;
  const train = sampleRows(trainF, opts.maxTrainRows, seed);
  const task = await trainProbe(train, testF, opts);
  const majority = majorityBaseline(train.y, testF.y, opts.numClasses);
  const report: ProbeReport = {
    kind: opts.kind ?? 'linear',
    numClasses: opts.numClasses,
    trainRows: train.rows,
    dim: train.dim,
    ...task,
    majority,
  };
  delete (report as Partial<ProbeTrainResult>).steps;
  if (opts.control) {
    if (train.wordIds.some((w) => w < 0)) throw new GrlError('a control task needs token-level features (one word type per row)');
    // Types seen only in the held-out split get their own fixed label too (the map covers both splits).
    const ctl = controlTask([train.wordIds, testF.wordIds], train.y, opts.numClasses, seed + 1);
    const [yTrain, yTest] = ctl.labels;
    // Control labels are word-type labels, not tag sequences: no span scores.
    const c = await trainProbe({ ...train, y: yTrain }, { ...testF, y: yTest }, { ...opts, labelNames: undefined });
    report.control = { accuracy: c.accuracy, majority: majorityBaseline(yTrain, yTest, opts.numClasses).accuracy, trainAccuracy: c.trainAccuracy };
    report.selectivity = report.accuracy - c.accuracy;
  }
  return report;
}
