// Concept erasure, INLP (Ravfogel et al. 2020, "Null It Out"), after the authors'
// get_debiasing_projection: train a linear classifier on the (projected) data, add
// its weights' column space to the removed subspace, project onto the intersection
// of the classifiers' nullspaces, and repeat, until the classifier is no better than
// the majority class on held-out rows (or the iterations run out). The classifier is a
// parameter; the default is the project's own linear probe (trainProbe through
// TrainingSession), started from zero weights.
import { Matrix } from 'ml-matrix';
import { GrlError } from '../onnx/errors';
import { Rng } from '../data/jsonl';
import { majorityBaseline } from '../probe/baselines';
import { ProbeData, ProbeTrainOptions, trainProbe } from '../probe/probe';
import { Eraser, applyEraser, orthogonalEraser } from './eraser';
import { orth, toMatrix } from './linalg';

/** Trains a linear classifier; returns its weight matrix [dim, classes] and its held-out accuracy. */
export type LinearClassifier = (train: ProbeData, dev: ProbeData, numClasses: number, iteration: number) => Promise<{ weight: Float32Array; accuracy: number }>;

export interface InlpOptions {
  numClasses: number;
  /** Maximum classifiers (default 20). */
  iterations?: number;
  /** Stop once held-out accuracy ≤ majority + tolerance (default 0.01). */
  tolerance?: number;
  /** Share of the rows held out to score each classifier (default 0.2, seeded split). */
  devFraction?: number;
  seed?: number;
  /** Directions of a classifier's weights below rtol × its largest singular value are noise (default 1e-3). */
  rtol?: number;
  classifier?: LinearClassifier;
  /** Options of the default probe classifier (epochs, lr, batch size, threads). */
  probe?: Omit<ProbeTrainOptions, 'numClasses' | 'kind' | 'init' | 'returnParameters' | 'seed'>;
}

export interface InlpIteration {
  iteration: number;
  accuracy: number;
  majority: number;
  /** Directions this classifier added (0 on the stopping iteration). */
  added: number;
  rank: number;
}

export interface InlpResult {
  eraser: Eraser;
  iterations: InlpIteration[];
  /** Why it stopped: the classifier reached majority, or the iteration budget ran out, or no directions were left. */
  stopped: 'majority' | 'iterations' | 'exhausted';
  tolerance: number;
  trainRows: number;
  devRows: number;
}

export const INLP_DEFAULTS = { iterations: 20, tolerance: 0.01, devFraction: 0.2, rtol: 1e-3 };

/** The project's linear probe as INLP's classifier: zero-initialised, trained by TrainingSession. */
export function probeClassifier(opts: InlpOptions['probe'] = {}, seed = 0): LinearClassifier {
  return async (train, dev, numClasses, iteration) => {
    const r = await trainProbe(train, dev, { epochs: 8, lr: 1e-2, ...opts, numClasses, kind: 'linear', init: 'zeros', returnParameters: true, seed: seed + iteration });
    const weight = r.parameters?.['probe.weight'];
    if (!weight) throw new GrlError('INLP: the probe returned no weight matrix');
    return { weight, accuracy: r.accuracy };
  };
}

function rowsOf(x: Float32Array, y: ArrayLike<number>, dim: number, idx: number[]): ProbeData {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, k) => out.set(x.subarray(r * dim, (r + 1) * dim), k * dim));
  return { x: out, rows: idx.length, dim, y: Int32Array.from(idx, (r) => y[r]) };
}

/** Fit INLP on row-major [rows, dim] features. */
export async function fitInlp(x: Float32Array, y: ArrayLike<number>, dim: number, opts: InlpOptions): Promise<InlpResult> {
  const rows = y.length;
  const C = opts.numClasses;
  const iterations = opts.iterations ?? INLP_DEFAULTS.iterations;
  const tolerance = opts.tolerance ?? INLP_DEFAULTS.tolerance;
  const devFraction = opts.devFraction ?? INLP_DEFAULTS.devFraction;
  const seed = opts.seed ?? 0;
  if (!(iterations >= 1)) throw new GrlError(`INLP: iterations must be at least 1, got ${iterations}`);
  if (!(devFraction > 0 && devFraction < 1)) throw new GrlError(`INLP: devFraction must be in (0, 1), got ${devFraction}`);
  const order = new Rng((seed * 2654435761 + 97) >>> 0).permutation(rows);
  const nDev = Math.max(1, Math.round(rows * devFraction));
  if (rows - nDev < 2) throw new GrlError(`INLP: ${rows} rows leave too few to train a classifier`);
  const train0 = rowsOf(x, y, dim, order.slice(nDev));
  const dev0 = rowsOf(x, y, dim, order.slice(0, nDev));
  const majority = majorityBaseline(train0.y, dev0.y, C).accuracy;
  const classify = opts.classifier ?? probeClassifier(opts.probe, seed);
  const rtol = opts.rtol ?? INLP_DEFAULTS.rtol;

  let basis = new Matrix(dim, 0); // orthonormal columns: the removed subspace
  const log: InlpIteration[] = [];
  let stopped: InlpResult['stopped'] = 'iterations';
  for (let it = 1; it <= iterations; it++) {
    const current = orthogonalEraser(basis, dim);
    const train = { ...train0, x: applyEraser(current, train0.x, train0.rows) };
    const dev = { ...dev0, x: applyEraser(current, dev0.x, dev0.rows) };
    const { weight, accuracy } = await classify(train, dev, C, it);
    if (accuracy <= majority + tolerance) {
      log.push({ iteration: it, accuracy, majority, added: 0, rank: basis.columns });
      stopped = 'majority';
      break;
    }
    // Softmax predictions only depend on the class weights minus their mean (a shared
    // column shifts every logit alike), so the classifier's directions are those of the
    // centred W: rank ≤ C − 1. And only the part outside the removed subspace acts on
    // projected data.
    const w = centreColumns(toMatrix(weight, dim, C));
    const wPerp = basis.columns ? w.sub(basis.mmul(basis.transpose().mmul(w))) : w;
    const fresh = orth(wPerp, rtol);
    basis = basis.columns ? concatColumns(basis, fresh) : fresh;
    log.push({ iteration: it, accuracy, majority, added: fresh.columns, rank: basis.columns });
    if (!fresh.columns || basis.columns >= dim) {
      stopped = 'exhausted';
      break;
    }
  }
  return { eraser: orthogonalEraser(basis, dim, 'inlp'), iterations: log, stopped, tolerance, trainRows: train0.rows, devRows: dev0.rows };
}

function centreColumns(w: Matrix): Matrix {
  for (let i = 0; i < w.rows; i++) {
    let mean = 0;
    for (let c = 0; c < w.columns; c++) mean += w.get(i, c) / w.columns;
    for (let c = 0; c < w.columns; c++) w.set(i, c, w.get(i, c) - mean);
  }
  return w;
}

function concatColumns(a: Matrix, b: Matrix): Matrix {
  const out = new Matrix(a.rows, a.columns + b.columns);
  out.setSubMatrix(a, 0, 0);
  if (b.columns) out.setSubMatrix(b, 0, a.columns);
  return out;
}
