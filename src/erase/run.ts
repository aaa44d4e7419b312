// Concept erasure, end to end for one model: pick the tensor and label, take the
// encodings there over the data (src/probe/features.ts), fit the eraser, splice it
// in with a record of what it was fit on. `grl-onnx erase` is a thin wrapper.
import * as crypto from 'crypto';
import * as fs from 'fs';
import type { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { extractFeatures } from '../probe/features';
import { sampleRows } from '../probe/probe';
import type { EraseMethod } from './eraser';
import { FitEraserResult, checkClassCounts, checkRankOption, fitEraser } from './fit';
import { DEFAULT_LEACE_SVD_TOL, LeaceFitter } from './leace';
import type { Example } from '../data/jsonl';
import type { CorpusOptions } from '../data/examples';
import { EraserRecord, eraserAt, removeEraser, spliceEraser } from './splice';
import { ErasureTarget, erasureTarget, loadErasureExamples } from './target';

export interface EraseModelOptions {
  data: string;
  label: string;
  method: EraseMethod;
  /** Erase at this tensor (default: the hidden states the heads read). */
  at?: string;
  rank?: number;
  iterations?: number;
  tolerance?: number;
  svdTol?: number;
  seed?: number;
  /** Fit on a seeded sample of at most this many labelled rows. */
  maxRows?: number;
  /** Replace an eraser already at the tensor. */
  replace?: boolean;
  threads?: number;
  /** INLP's probe: epochs, learning rate, batch size. */
  probe?: { epochs?: number; lr?: number; batchSize?: number };
  /**
   * LEACE without maxRows streams: the encodings of this many examples at a time go into
   * the running statistics and are dropped (default 2048), so the feature set never has to
   * fit in memory.
   */
  streamExamples?: number;
  /** Read `data` as a corpus through a tokenizer (`labels`: ['pos=upos']); ids JSONL needs none. */
  corpus?: CorpusOptions;
}

export interface EraseModelResult {
  model: Model;
  record: EraserRecord;
  replaced?: EraserRecord;
  fit: FitEraserResult;
  tensor: string;
  label: string;
  /** Labelled rows available and rows fit on. */
  rows: { available: number; used: number };
}

export function fileSha256(file: string): string {
  try {
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch (e) {
    throw new GrlError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`, { file });
  }
}

export async function eraseModel(model: Model, opts: EraseModelOptions): Promise<EraseModelResult> {
  const seed = opts.seed ?? 0;
  checkRankOption(opts.method, opts.rank);
  let base = model;
  const probeTarget = erasureTarget(model, opts.label, opts.at);
  const existing = eraserAt(model.proto, probeTarget.tensor);
  if (existing) {
    if (!opts.replace) throw new GrlError(`${model.source}: tensor '${probeTarget.tensor}' already has a ${existing.method} eraser (fit on label '${existing.fit.label ?? '?'}'); pass --replace to fit a new one in its place`, { file: model.source });
    // Fit on the encodings without the old eraser.
    base = removeEraser(model, probeTarget.tensor).model;
  }
  const target = existing ? erasureTarget(base, opts.label, probeTarget.tensor) : probeTarget;
  const examples = loadErasureExamples(opts.data, target.spec, opts.corpus, base);
  const session = opts.threads ? { intraOpNumThreads: opts.threads } : undefined;
  const fopts = { tensor: target.tensor, label: target.label, tokenLevel: target.tokenLevel, session };
  const what = `${opts.data}, label '${target.label}' at '${target.tensor}'`;
  let fit: FitEraserResult;
  let rows: EraseModelResult['rows'];
  if (opts.method === 'leace' && opts.maxRows === undefined) {
    fit = await streamLeace(base, examples, target, fopts, what, opts);
    rows = { available: fit.stats.rows as number, used: fit.stats.rows as number };
  } else {
    const all = await extractFeatures(base, examples, target.spec, fopts);
    const features = sampleRows(all, opts.maxRows, seed);
    fit = await fitEraser(features, {
      method: opts.method, numClasses: target.numClasses, rank: opts.rank, iterations: opts.iterations, tolerance: opts.tolerance,
      svdTol: opts.svdTol, seed, what, probe: { ...opts.probe, threads: opts.threads },
    });
    rows = { available: all.rows, used: features.rows };
  }
  const spliced = spliceEraser(base, fit.eraser, {
    tensor: target.tensor,
    fit: { label: target.label, data: opts.data, dataSha256: fileSha256(opts.data), rows: rows.used, classes: fit.numClasses, seed, ...fit.stats },
  });
  return { model: spliced.model, record: spliced.record, replaced: existing, fit, tensor: target.tensor, label: target.label, rows };
}

/** LEACE over the data in chunks of examples: only the d × d statistics stay in memory. */
async function streamLeace(model: Model, examples: Example[], target: ErasureTarget, fopts: Parameters<typeof extractFeatures>[3], what: string, opts: EraseModelOptions): Promise<FitEraserResult> {
  const C = target.numClasses ?? largestLabel(examples, target.label) + 1;
  const chunk = Math.max(1, opts.streamExamples ?? 2048);
  let fitter: LeaceFitter | undefined;
  for (let s = 0; s < examples.length; s += chunk) {
    const f = await extractFeatures(model, examples.slice(s, s + chunk), target.spec, fopts);
    if (!f.rows) continue;
    fitter ??= new LeaceFitter(f.dim, Math.max(C, 1), { svdTol: opts.svdTol ?? DEFAULT_LEACE_SVD_TOL });
    fitter.update(f.x, f.y, f.rows);
  }
  checkClassCounts(fitter ? fitter.stats.classCounts : [0], what);
  const { eraser, stats } = (fitter as LeaceFitter).fit();
  return { eraser, numClasses: C, stats: { ...stats } };
}

/** The largest class id of a label in the data (-100 and other negatives are ignored). */
function largestLabel(examples: Example[], label: string): number {
  let max = -1;
  for (const e of examples) {
    const v = e.labels[label];
    if (typeof v === 'number') max = Math.max(max, v);
    else if (v) for (let i = 0; i < v.length; i++) max = Math.max(max, v[i]);
  }
  return max;
}
