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
import { FitEraserResult, checkRankOption, fitEraser } from './fit';
import { EraserRecord, eraserAt, removeEraser, spliceEraser } from './splice';
import { erasureTarget, loadErasureExamples } from './target';

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
  const examples = loadErasureExamples(opts.data, target.spec);
  const session = opts.threads ? { intraOpNumThreads: opts.threads } : undefined;
  const all = await extractFeatures(base, examples, target.spec, { tensor: target.tensor, label: target.label, tokenLevel: target.tokenLevel, session });
  const features = sampleRows(all, opts.maxRows, seed);
  const what = `${opts.data}, label '${target.label}' at '${target.tensor}'`;
  const fit = await fitEraser(features, {
    method: opts.method, numClasses: target.numClasses, rank: opts.rank, iterations: opts.iterations, tolerance: opts.tolerance,
    svdTol: opts.svdTol, seed, what, probe: { ...opts.probe, threads: opts.threads },
  });
  const spliced = spliceEraser(base, fit.eraser, {
    tensor: target.tensor,
    fit: { label: target.label, data: opts.data, dataSha256: fileSha256(opts.data), rows: features.rows, classes: fit.numClasses, seed, ...fit.stats },
  });
  return { model: spliced.model, record: spliced.record, replaced: existing, fit, tensor: target.tensor, label: target.label, rows: { available: all.rows, used: features.rows } };
}
