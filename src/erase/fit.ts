// Concept erasure, one entry point over the three fitters: features in, one
// Eraser out, plus JSON-able statistics of the fit. Input checks live here so the
// CLI and library callers get the same one-line errors.
import { GrlError } from '../onnx/errors';
import type { Features } from '../probe/features';
import { labelCounts } from '../probe/baselines';
import { EraseMethod, Eraser } from './eraser';
import { DEFAULT_LEACE_SVD_TOL, fitLeace } from './leace';
import { InlpOptions, InlpResult, fitInlp } from './inlp';
import { randomEraser } from './random';

export interface FitEraserOptions {
  method: EraseMethod;
  /** Classes of the label (default: the largest id in the data + 1). */
  numClasses?: number;
  /** random: the number of directions (default: the rank INLP removes with the same options). */
  rank?: number;
  /** INLP: maximum classifiers. */
  iterations?: number;
  /** INLP: stop once held-out accuracy ≤ majority + tolerance. */
  tolerance?: number;
  /** LEACE: singular-value threshold of the whitened cross-covariance. */
  svdTol?: number;
  seed?: number;
  /** INLP: options of its probe classifier. */
  probe?: InlpOptions['probe'];
  /** Where the features came from, for messages (e.g. `data/train.jsonl, label pos`). */
  what?: string;
}

export interface FitEraserResult {
  eraser: Eraser;
  numClasses: number;
  /** Method statistics, JSON-able (they go into the model's metadata). */
  stats: Record<string, unknown>;
  /** INLP's run (also for random without --rank: the INLP run that set its rank). */
  inlp?: InlpResult;
}

/** Fewest labelled rows we fit on: below this the statistics say nothing. */
export const MIN_ERASE_ROWS = 10;

export function checkErasureFeatures(f: Features, numClasses: number | undefined, what: string): number {
  let max = -1;
  for (let i = 0; i < f.rows; i++) max = Math.max(max, f.y[i]);
  const C = numClasses ?? max + 1;
  if (max >= C) throw new GrlError(`${what}: label ${max} is outside [0, ${C})`);
  checkClassCounts(f.rows < MIN_ERASE_ROWS ? [f.rows] : labelCounts(f.y, C), what);
  return C;
}

/** Enough rows, and at least two classes among them. */
export function checkClassCounts(counts: number[], what: string): void {
  const rows = counts.reduce((a, b) => a + b, 0);
  if (rows < MIN_ERASE_ROWS) throw new GrlError(`${what}: too few examples: ${rows} labelled row${rows === 1 ? '' : 's'}, need at least ${MIN_ERASE_ROWS}`);
  const present = counts.filter((c) => c > 0).length;
  if (present < 2) throw new GrlError(`${what}: the label has one class (every row is class ${counts.findIndex((c) => c > 0)}); there is nothing to erase`);
}

/** Only random erasure takes a rank; the others find theirs. */
export function checkRankOption(method: EraseMethod, rank: number | undefined): void {
  if (rank !== undefined && method !== 'random') throw new GrlError(`--rank applies to --method random (${method} finds its own rank)`);
}

export async function fitEraser(f: Features, opts: FitEraserOptions): Promise<FitEraserResult> {
  const what = opts.what ?? 'features';
  const C = checkErasureFeatures(f, opts.numClasses, what);
  const seed = opts.seed ?? 0;
  checkRankOption(opts.method, opts.rank);
  const runInlp = () => fitInlp(f.x, f.y, f.dim, { numClasses: C, iterations: opts.iterations, tolerance: opts.tolerance, seed, probe: opts.probe });
  if (opts.method === 'leace') {
    const { eraser, stats } = fitLeace(f.x, f.y, f.dim, C, { svdTol: opts.svdTol ?? DEFAULT_LEACE_SVD_TOL });
    return { eraser, numClasses: C, stats: { ...stats } };
  }
  if (opts.method === 'inlp') {
    const inlp = await runInlp();
    return { eraser: inlp.eraser, numClasses: C, inlp, stats: inlpStats(inlp) };
  }
  if (opts.method === 'random') {
    let rank = opts.rank;
    let inlp: InlpResult | undefined;
    if (rank === undefined) {
      inlp = await runInlp();
      rank = inlp.eraser.rank;
      if (rank < 1) throw new GrlError(`${what}: INLP removed no direction (its first classifier was already at majority), so there is no rank for random erasure; give --rank K`);
    }
    const eraser = randomEraser(f.dim, rank, seed);
    return { eraser, numClasses: C, inlp, stats: { rankFrom: inlp ? 'inlp' : 'option', ...(inlp ? { inlp: inlpStats(inlp) } : {}) } };
  }
  throw new GrlError(`unknown erasure method '${String(opts.method)}' (expected inlp, leace or random)`);
}

function inlpStats(r: InlpResult): Record<string, unknown> {
  return { stopped: r.stopped, tolerance: r.tolerance, trainRows: r.trainRows, devRows: r.devRows, iterations: r.iterations };
}
