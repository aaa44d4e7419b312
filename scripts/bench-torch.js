#!/usr/bin/env node
/**
 * User-shaped models, with PyTorch side by side (issue 13; a script, never a timed test).
 *
 *   node scripts/bench-torch.js [--rows train14,train17,hf[,bert-base]] [--runs 20 --warmup 3 --big-runs 8]
 *
 * Per model row (scripts/bench_torch.py builds each in PyTorch and exports it, so both sides
 * run the same definition and weights):
 * - steady state: N inference forwards back to back, then N TrainingSession AdamW steps back to
 *   back (the other session idle), and the step/forward ratio;
 * - interleaved (forward, step, forward, ...) with the 150 ms idle gap of bench-train.js;
 * - `grl-onnx train --json`'s median step_ms on the same model and batch vs the bare step, and
 *   the same comparison inside one process (bare steps, `train()`, bare steps again; --no-ab skips);
 * - PyTorch (2 threads) forward under inference_mode and AdamW step medians, and grl-onnx's
 *   step / PyTorch's. Refused when torch's 1024^2 matmul runs below 50 GFLOP/s (reference BLAS).
 * Row bert-base (batch 4 x 64) also reports the peak RSS of each side, each training alone in
 * its own process, and of the whole `grl-onnx train` process (artifacts, checkpoint and export included).
 */
'use strict';

const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const C = require('./bench-common');

const HEADS = { pos: 17, ner: 9 };
const DIR = path.join(C.OUT, 'torch');
const PY = path.join(__dirname, 'bench_torch.py');
const PYTHON = '/usr/bin/python3';
const MIN_GFLOPS = 50;
const ROW_BATCH = { 'bert-base': [4, 64] };
const ROW_VOCAB = { train14: 8000, train17: 8000, hf: 8000, 'bert-base': 30522 };

function py(args, opts = {}) {
  const r = cp.spawnSync(PYTHON, [PY, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) C.die(`bench_torch.py ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  return r.stdout.trim().split('\n').pop();
}

function torchAvailable() {
  return fs.existsSync(PYTHON) && cp.spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' }).status === 0;
}

function model(row) {
  const file = path.join(DIR, `${row}.onnx`);
  if (!fs.existsSync(file) || !fs.existsSync(path.join(DIR, `${row}.pt`))) console.log(py(['export', row, DIR]));
  return file;
}

function artifacts(file, row) {
  const dir = path.join(DIR, `artifacts-${row}`);
  const r = cp.spawnSync(process.execPath, [path.join(__dirname, 'bench-train.js'), '--make-artifacts', file, dir], { stdio: 'inherit' });
  if (r.status !== 0) C.die(`generating the training artifacts of ${row} failed`);
  return dir;
}

async function trainStep(session, feeds) {
  await session.runTrainStep(feeds);
  await session.runOptimizerStep();
  await session.lazyResetGrad();
}

async function backToBack(fn, warmup, runs) {
  const ts = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t = C.now();
    await fn();
    if (i >= warmup) ts.push(C.now() - t);
  }
  return ts;
}

/** Steady-state and interleaved timings of the inference forward and the TrainingSession step. */
async function grlTimings(file, dir, batch, { runs, warmup }) {
  const ort = require('onnxruntime-node');
  const { TrainingSession } = require('../dist/train/session');
  const fwd = await ort.InferenceSession.create(file, C.sessionOptions());
  const session = await TrainingSession.create({ artifactsDir: dir }, C.sessionOptions());
  const feeds = { ...batch.inputs, ...batch.labels };
  const steadyF = await backToBack(() => fwd.run(batch.inputs), warmup, runs);
  await C.sleep(300);
  const steadyS = await backToBack(() => trainStep(session, feeds), warmup, runs);
  await C.sleep(300);
  const il = await C.interleaved({ f: () => fwd.run(batch.inputs), s: () => trainStep(session, feeds) }, { warmup, runs });
  await session.release();
  await fwd.release();
  return { steadyF: C.median(steadyF), steadyS: C.median(steadyS), ilF: C.median(il.f), ilS: C.median(il.s) };
}

/** B*steps examples of T tokens with random ids and labels, as JSONL (the CLI's data). */
function cliData(row, [B, T], vocab, steps) {
  const data = path.join(DIR, `${row}-${B}x${T}.jsonl`);
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const lines = [];
  for (let i = 0; i < B * steps; i++) {
    const ex = { input_ids: Array.from({ length: T }, () => Math.floor(r() * vocab)) };
    for (const [h, k] of Object.entries(HEADS)) ex[h] = Array.from({ length: T }, () => Math.floor(r() * k));
    lines.push(JSON.stringify(ex));
  }
  fs.writeFileSync(data, `${lines.join('\n')}\n`);
  return data;
}

/**
 * `grl-onnx train --json` on the same model and batch shape: the median step_ms after warm-up,
 * and the peak RSS of the whole CLI process (artifacts, training, checkpoint, export) when
 * /usr/bin/time is there to report it.
 */
function cliStepMs(file, row, [B, T], vocab, { runs, warmup }) {
  const data = cliData(row, [B, T], vocab, runs + warmup);
  const out = path.join(DIR, `run-${row}`);
  fs.rmSync(out, { recursive: true, force: true });
  const cli = [path.join(C.ROOT, 'bin', 'grl-onnx.js'), 'train', file, '--data', data,
    '--loss', 'pos', '--loss', 'ner', '--lr', '1e-4', '--batch-size', String(B), '--steps', String(runs + warmup),
    '--no-shuffle', '--json', '--out', out];
  const timed = fs.existsSync('/usr/bin/time');
  const res = timed
    ? cp.spawnSync('/usr/bin/time', ['-f', 'maxrss_kb %M', process.execPath, ...cli], { encoding: 'utf8', maxBuffer: 1 << 26 })
    : cp.spawnSync(process.execPath, cli, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (res.status !== 0) C.die(`grl-onnx train on ${row} failed: ${res.stderr.trim().split('\n').pop()}`);
  const steps = res.stdout.split('\n').filter((l) => l.startsWith('{"step"')).map((l) => JSON.parse(l).step_ms);
  const rss = /maxrss_kb (\d+)/.exec(res.stderr);
  return { stepMs: C.median(steps.slice(warmup)), peakRss: rss ? Number(rss[1]) * 1024 : undefined };
}

/**
 * The trainer's step against the bare step in one process: bare steps, then `train()` (the
 * library behind the CLI) on JSONL batches of the same shape, then bare steps again, so a
 * difference is the trainer's own per-step work, not a second process's caches.
 */
function cliInProcess(file, dir, row, shape, vocab, opts) {
  const data = cliData(row, shape, vocab, opts.runs + opts.warmup);
  const r = cp.spawnSync(process.execPath, [__filename, '--cli-ab', file, dir, data, String(shape[0]), String(shape[1]), String(vocab), String(opts.runs), String(opts.warmup)], { encoding: 'utf8' });
  if (r.status !== 0) C.die(`in-process trainer A/B failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/**
 * What the trainer adds to a step outside onnxruntime and the update: building the batch from
 * the loaded examples and its feeds (the same functions the trainer calls), median of 200.
 */
function batchAssemblyMs(dir, data, B) {
  const { readArtifactsMetadata } = require('../dist/train/artifacts');
  const { loadModel } = require('../dist/onnx/io');
  const { dataSpecFor, batchFeeds, embeddingLimits } = require('../dist/train/feeds');
  const { makeBatch, BatchOrder } = require('../dist/data/jsonl');
  const { loadExamples } = require('../dist/data/examples');
  const { sequenceLimit } = require('../dist/onnx/limits');
  const tg = readArtifactsMetadata(dir);
  const model = loadModel(path.join(dir, 'inference_model.onnx'));
  const spec = { ...dataSpecFor(tg, embeddingLimits(model), {}), sequenceLimit: sequenceLimit(model) };
  const examples = loadExamples(data, spec);
  const order = new BatchOrder(examples.length, B, false, 0);
  const ts = [];
  for (let k = 0; k < 200; k++) {
    const t = C.now();
    batchFeeds(makeBatch(order.batch(k % order.batchesPerEpoch).map((i) => examples[i]), spec), spec, tg.heads);
    ts.push(C.now() - t);
  }
  return C.median(ts);
}

async function cliAb([file, dir, data, B, T, vocab, runs, warmup]) {
  const ort = require('onnxruntime-node');
  const { TrainingSession } = require('../dist/train/session');
  const { train } = require('../dist/train/trainer');
  const batch = C.makeBatch(ort, { batch: +B, tokens: +T, vocab: +vocab, heads: HEADS });
  const bare = async () => {
    const session = await TrainingSession.create({ artifactsDir: dir }, C.sessionOptions());
    const ts = await backToBack(() => trainStep(session, { ...batch.inputs, ...batch.labels }), +warmup, +runs);
    await session.release();
    return C.median(ts);
  };
  const before = await bare();
  const out = path.join(DIR, 'run-cli-ab');
  fs.rmSync(out, { recursive: true, force: true });
  // Time inside the session's own calls during each trainer step, so the trainer's overhead is
  // step_ms minus that time on the same step (no machine drift between the two).
  let inSession = 0;
  const proto = TrainingSession.prototype;
  const wrapped = ['runTrainStep', 'runOptimizerStep', 'lazyResetGrad'].map((name) => {
    const orig = proto[name];
    proto[name] = async function timed(...args) {
      const t = C.now();
      try {
        return await orig.apply(this, args);
      } finally {
        inSession += C.now() - t;
      }
    };
    return [name, orig];
  });
  const steps = [];
  const overhead = [];
  await train({ model: file, data, losses: Object.keys(HEADS).map((head) => ({ head })), lr: 1e-4, batchSize: +B, steps: +runs + +warmup, shuffle: false, out }, {
    onStep: (rec) => {
      steps.push(rec.step_ms);
      overhead.push(rec.step_ms - inSession);
      inSession = 0;
    },
  });
  for (const [name, orig] of wrapped) proto[name] = orig;
  const after = await bare();
  console.log(JSON.stringify({ bareBefore: before, trainer: C.median(steps.slice(+warmup)), bareAfter: after, overheadMs: C.median(overhead.slice(+warmup)), assemblyMs: batchAssemblyMs(dir, data, +B) }));
}

/** Peak RSS of a process that only builds the TrainingSession and runs `runs` steps. */
function grlStepOnlyRss(dir, [B, T], vocab, runs) {
  const r = cp.spawnSync(process.execPath, [__filename, '--step-only', dir, String(B), String(T), String(vocab), String(runs)], { encoding: 'utf8' });
  if (r.status !== 0) C.die(`step-only run failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function stepOnly([dir, B, T, vocab, runs]) {
  const ort = require('onnxruntime-node');
  const { TrainingSession } = require('../dist/train/session');
  const batch = C.makeBatch(ort, { batch: +B, tokens: +T, vocab: +vocab, heads: HEADS });
  const session = await TrainingSession.create({ artifactsDir: dir }, C.sessionOptions());
  const ts = await backToBack(() => trainStep(session, { ...batch.inputs, ...batch.labels }), 2, +runs);
  console.log(JSON.stringify({ step_ms: C.median(ts), peak_rss_bytes: process.resourceUsage().maxRSS * 1024 }));
}

function torchTimings(row, [B, T], { runs, warmup }, only) {
  const args = ['time', row, DIR, '--batch', String(B), '--tokens', String(T), '--runs', String(runs), '--warmup', String(warmup), '--threads', '2'];
  const r = JSON.parse(py(only ? [...args, '--only', only] : args));
  return { forward: r.forward_ms && C.median(r.forward_ms), step: r.step_ms && C.median(r.step_ms), rss: r.peak_rss_bytes, version: r.torch };
}

const f1 = (x) => (x === undefined ? '-' : x.toFixed(1));
const f2 = (x) => (x === undefined ? '-' : x.toFixed(2));

async function main() {
  C.ensureBuilt();
  const ort = require('onnxruntime-node');
  const ri = process.argv.indexOf('--rows');
  const rows = ri >= 0 ? process.argv[ri + 1].split(',') : ['train14', 'train17', 'hf'];
  const small = { runs: C.intArg('runs', 20), warmup: C.intArg('warmup', 3) };
  C.printMachine();
  if (!torchAvailable()) C.die(`${PYTHON} lacks torch or onnx: the models are built in PyTorch, so nothing to compare`);
  const blas = JSON.parse(py(['blas', '--threads', '2']));
  let torchOk = blas.gflops >= MIN_GFLOPS;
  console.log(`torch ${blas.torch}, 2 threads: 1024^2 float32 matmul ${blas.gflops.toFixed(1)} GFLOP/s`);
  if (!torchOk) console.log(`PyTorch columns skipped: ${blas.gflops.toFixed(1)} GFLOP/s < ${MIN_GFLOPS} means a reference BLAS, the comparison would be meaningless`);
  if (process.argv.includes('--no-torch')) torchOk = false;
  const results = [];
  for (const row of rows) {
    const shape = ROW_BATCH[row] ?? [C.intArg('batch', 8), C.intArg('tokens', 128)];
    const opts = row === 'bert-base' ? { runs: C.intArg('big-runs', 8), warmup: 2 } : small;
    const file = model(row);
    const dir = artifacts(file, row);
    const batch = C.makeBatch(ort, { batch: shape[0], tokens: shape[1], vocab: ROW_VOCAB[row], heads: HEADS });
    const g = await grlTimings(file, dir, batch, opts);
    const { stepMs: cli, peakRss: cliRss } = cliStepMs(file, row, shape, ROW_VOCAB[row], opts);
    const ab = process.argv.includes('--no-ab') ? undefined : cliInProcess(file, dir, row, shape, ROW_VOCAB[row], opts);
    const t = torchOk ? torchTimings(row, shape, opts) : {};
    const res = { row, shape: shape.join('x'), ...g, cli, cliRss, ab, torchF: t.forward, torchS: t.step };
    if (row === 'bert-base') {
      res.grlRss = grlStepOnlyRss(dir, shape, ROW_VOCAB[row], opts.runs).peak_rss_bytes;
      if (torchOk) res.torchRss = torchTimings(row, shape, opts, 'step').rss;
    }
    results.push(res);
    console.log(`${row} (${res.shape}): steady forward ${f1(g.steadyF)} ms, step ${f1(g.steadyS)} ms, ratio ${f2(g.steadyS / g.steadyF)}x | interleaved forward ${f1(g.ilF)}, step ${f1(g.ilS)}, ratio ${f2(g.ilS / g.ilF)}x | train --json step_ms ${f1(cli)} (${f2(cli / g.steadyS)}x the bare step)${ab ? ` | in one process: bare ${f1(ab.bareBefore)}, train() ${f1(ab.trainer)}, bare ${f1(ab.bareAfter)} (${f2((2 * ab.trainer) / (ab.bareBefore + ab.bareAfter))}x); the trainer's own work per step ${ab.overheadMs.toFixed(2)} ms (${(100 * ab.overheadMs / ab.trainer).toFixed(1)}%), batch assembly ${ab.assemblyMs.toFixed(2)} ms` : ''} | torch forward ${f1(t.forward)}, step ${f1(t.step)}, grl/torch step ${t.step ? f2(g.steadyS / t.step) : '-'}${res.grlRss ? ` | peak RSS grl step ${C.mib(res.grlRss)}, grl-onnx train process ${res.cliRss ? C.mib(res.cliRss) : '-'}, torch ${res.torchRss ? C.mib(res.torchRss) : '-'}` : ''}`);
  }
  fs.appendFileSync(path.join(DIR, 'runs.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), machine: C.machine(), blas, results })}\n`);
}

if (process.argv[2] === '--step-only') {
  stepOnly(process.argv.slice(3)).catch((e) => C.die(e.message.split('\n')[0]));
} else if (process.argv[2] === '--cli-ab') {
  cliAb(process.argv.slice(3)).catch((e) => C.die(e.message.split('\n')[0]));
} else {
  main().catch((e) => C.die(e.message.split('\n')[0]));
}
