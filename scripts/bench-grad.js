#!/usr/bin/env node
/**
 * Gradient-graph benchmark (issue 5 §5; a script, not a timed test).
 *
 *   npm run bench:grad [-- --runs 20 --warmup 3 --profile --skip-build | --only-build]
 *
 * (a) BERT-like d=256 tagger (4 layers, 4 heads, FFN 1024, vocab 8000, heads pos/ner),
 *     batch 8 x 128: the plain onnxruntime-node inference forward of the exported model
 *     vs. one run of the training graph (forward + both losses + backward, every
 *     parameter gradient into one flat buffer as TrainingSession does: dense outputs bound
 *     to views of it, the word table's row-sparse output added into it in the timed run),
 *     interleaved, median of --runs after --warmup, identical session options. A third
 *     session runs the same graph fetching only the loss, which shows what the binding
 *     spends returning the gradients.
 *     Target: ratio <= 3.2 (FLOP floor about 3).
 * (b) buildTrainingGraph on the BERT-base-size model (110M parameters): load and build
 *     times printed separately. Target: build <= 2 s.
 * --no-fuse: keep the decomposed LayerNorms (for comparison; see src/grad/fuse.ts).
 * --dense: every gradient dense, the word table's too (by default it is row-sparse, as
 *     `grl-onnx train` builds it, and the timed run includes adding its rows into the flat buffer).
 * --profile [--nodes]: also runs both sessions with onnxruntime profiling and prints kernel time
 *     per op type (written to bench-out/profile-*.json).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const C = require('./bench-common');

C.ensureBuilt();
const ort = require('onnxruntime-node');
const { loadModel, serializeModel } = require('../dist/onnx/io');
const { tensorToFloat32 } = require('../dist/onnx/tensor');
const { buildTrainingGraph } = require('../dist/grad/training');
const { scatterAddRows, zeroRows } = require('../dist/train/rows');

const BATCH = C.intArg('batch', 8);
const TOKENS = C.intArg('tokens', 128);
const RUNS = C.intArg('runs', 20);
const WARMUP = C.intArg('warmup', 3);
const HEADS = { pos: 17, ner: 9 };
const TARGET_RATIO = 3.2;
const TARGET_BUILD_S = 2;

/**
 * Everything a training-graph run needs, as TrainingSession does it: parameter feeds, dense
 * gradients bound to views of one flat buffer, and `scatter(result)`, which adds row-sparse
 * gradients (the word table's) into that buffer after clearing the rows the last run wrote.
 */
function trainingFeeds(model, tg, batch) {
  const inits = new Map((model.proto.graph.initializer ?? []).map((t) => [t.name, t]));
  const feeds = { ...batch.inputs, ...batch.labels };
  const fetches = {};
  const trainable = tg.params.filter((q) => q.trainable);
  const flat = new Float32Array(trainable.reduce((n, p) => n + p.dims.reduce((a, b) => a * b, 1), 0));
  const rowSlots = [];
  let offset = 0;
  for (const p of trainable) {
    const size = p.dims.reduce((a, b) => a * b, 1);
    feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name), model.baseDir), p.dims);
    const rows = tg.outputs.rowGrads?.[p.name];
    if (rows) {
      fetches[rows.rows] = fetches[rows.indices] = null;
      rowSlots.push({ name: p.name, offset, rowCount: p.dims[0], width: size / p.dims[0], outputs: rows, written: null });
    } else {
      fetches[tg.outputs.grads[p.name]] = new ort.Tensor('float32', flat.subarray(offset, offset + size), p.dims);
    }
    offset += size;
  }
  for (const l of tg.lambdas) feeds[l.input] = new ort.Tensor('float32', Float32Array.of(l.default), []);
  fetches[tg.outputs.loss] = null;
  const scatter = (result) => {
    for (const r of rowSlots) {
      if (r.written) zeroRows(flat, r, r.written);
      r.written = result[r.outputs.indices].data;
      scatterAddRows(flat, r, result[r.outputs.rows].data, r.written);
    }
  };
  return { feeds, fetches, scatter };
}

async function profiled(bytes, feeds, fetches, name) {
  const prefix = path.join(C.OUT, `profile-${name}`);
  const s = await ort.InferenceSession.create(bytes, C.sessionOptions({ enableProfiling: true, profileFilePrefix: prefix }));
  for (let k = 0; k < 1 + 8; k++) await s.run(feeds, fetches);
  s.endProfiling();
  await s.release();
  const file = fs.readdirSync(C.OUT).filter((f) => f.startsWith(`profile-${name}`) && f.endsWith('.json')).map((f) => path.join(C.OUT, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  return C.profileByOp(file, 1);
}

async function forwardVsBackward() {
  const file = C.benchModel('train');
  const model = loadModel(file);
  const tg = buildTrainingGraph(model, { losses: Object.keys(HEADS).map((head) => ({ head })), fuseLayerNorm: !C.flag('no-fuse'), rowSparseGradients: !C.flag('dense') });
  const trainingBytes = serializeModel(tg.training);
  const nParams = tg.params.filter((p) => p.trainable).reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0);
  console.log(`(a) ${path.relative(C.ROOT, file)}: ${(fs.statSync(file).size / 1e6).toFixed(1)} MB, ${nParams.toLocaleString('en')} trainable parameters; training graph ${tg.training.graph.node.length} nodes (forward ${model.proto.graph.node.length}); batch ${BATCH} x ${TOKENS}`);

  const batch = C.makeBatch(ort, { batch: BATCH, tokens: TOKENS, vocab: 8000, heads: HEADS });
  const fwd = await ort.InferenceSession.create(file, C.sessionOptions());
  const train = await ort.InferenceSession.create(trainingBytes, C.sessionOptions());
  // The same graph in its own session, fetching only the loss: onnxruntime still runs every
  // node, so the difference is what onnxruntime-node's binding spends returning the gradients
  // (it copies each fetched output into a fresh ArrayBuffer). Its own session, because
  // switching one session between fetch sets re-plans its memory and costs several ms.
  const unfetched = await ort.InferenceSession.create(trainingBytes, C.sessionOptions());
  const { feeds, fetches, scatter } = trainingFeeds(model, tg, batch);
  const lossOnly = { [tg.outputs.loss]: null };
  const times = await C.interleaved({
    forward: () => fwd.run(batch.inputs),
    'forward+backward': async () => scatter(await train.run(feeds, fetches)),
    unfetched: () => unfetched.run(feeds, lossOnly),
  }, { warmup: WARMUP, runs: RUNS });
  await fwd.release();
  await train.release();
  await unfetched.release();

  const f = C.median(times.forward);
  const fb = C.median(times['forward+backward']);
  const ratio = fb / f;
  console.log(`    inference forward         median ${f.toFixed(1)} ms  (min ${Math.min(...times.forward).toFixed(1)}, ${RUNS} runs after ${WARMUP} warm-up)`);
  console.log(`    forward+backward (train)  median ${fb.toFixed(1)} ms  (min ${Math.min(...times['forward+backward']).toFixed(1)})`);
  console.log(`    ratio ${ratio.toFixed(2)}x  (target <= ${TARGET_RATIO}x: ${ratio <= TARGET_RATIO ? 'met' : `missed by ${(ratio - TARGET_RATIO).toFixed(2)}x`})`);
  const nf = C.median(times.unfetched);
  console.log(`    the same run fetching only the loss: median ${nf.toFixed(1)} ms = ${(nf / f).toFixed(2)}x, so returning the ${Object.keys(fetches).length - 1} gradient outputs through onnxruntime-node costs ${(fb - nf).toFixed(1)} ms`);

  if (C.flag('profile')) {
    printProfiles([
      ['inference forward', await profiled(fs.readFileSync(file), batch.inputs, undefined, 'forward')],
      ['forward+backward', await profiled(trainingBytes, feeds, fetches, 'train')],
    ]);
  }
  return { forwardMs: f, trainMs: fb, unfetchedMs: nf, ratio, forwardMin: Math.min(...times.forward), trainMin: Math.min(...times['forward+backward']), params: nParams, nParams: tg.params.filter((p) => p.trainable).length, fused: !C.flag('no-fuse') };
}

const PRODUCTS = new Set(['MatMul', 'FusedMatMul', 'Gemm']);
const productMs = (prof) => prof.ops.filter((o) => PRODUCTS.has(o.op)).reduce((s, o) => s + o.ms, 0);

function printProfiles(list) {
  // The FLOP floor argument in numbers: the matrix products alone, training vs inference.
  const [fwd, train] = list.map(([, prof]) => prof);
  if (fwd && train) {
    const a = productMs(fwd);
    const b = productMs(train);
    console.log(`    matrix products (MatMul, FusedMatMul, Gemm): ${b.toFixed(1)} ms vs ${a.toFixed(1)} ms in the forward = ${(b / a).toFixed(2)}x (FLOP ratio 3x); everything else ${(train.totalMs - b).toFixed(1)} ms vs ${(fwd.totalMs - a).toFixed(1)} ms`);
  }
  for (const [title, prof] of list) {
    C.printProfile(`    profile, ${title}`, prof, 14);
    // Backward nodes are named `<node>/grad/...` or `<tensor>_grad...`, loss nodes `loss...`.
    const part = (re) => prof.nodes.filter((n) => re.test(n.name)).reduce((s, n) => s + n.ms, 0);
    const back = part(/\/grad\/|_grad/);
    const loss = part(/^loss/);
    if (back > 0) console.log(`    of which backward ${back.toFixed(1)} ms, losses ${loss.toFixed(1)} ms, forward ${(prof.totalMs - back - loss).toFixed(1)} ms`);
    if (C.flag('nodes')) for (const n of prof.nodes.slice(0, 30)) console.log(`      ${n.ms.toFixed(2).padStart(7)} ms  ${n.op.padEnd(14)} ${n.name}`);
  }
}

function buildTime() {
  const file = C.benchModel('bert-base');
  let t0 = C.now();
  const model = loadModel(file);
  const loadMs = C.now() - t0;
  t0 = C.now();
  const tg = buildTrainingGraph(model, { losses: Object.keys(HEADS).map((head) => ({ head })) });
  const buildMs = C.now() - t0;
  const nParams = tg.params.filter((p) => p.trainable).reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0);
  console.log(`(b) ${path.relative(C.ROOT, file)}: ${(fs.statSync(file).size / 1e6).toFixed(0)} MB, ${nParams.toLocaleString('en')} trainable parameters, ${model.proto.graph.node.length} forward nodes -> ${tg.training.graph.node.length} training nodes`);
  console.log(`    loadModel ${loadMs.toFixed(0)} ms, buildTrainingGraph ${buildMs.toFixed(0)} ms  (target <= ${TARGET_BUILD_S} s: ${buildMs <= TARGET_BUILD_S * 1000 ? 'met' : 'missed'})`);
  return { loadMs, buildMs, params: nParams, mb: (fs.statSync(file).size / 1e6).toFixed(0) };
}

function resultsMarkdown(m, r) {
  const lines = ['## Gradients (`npm run bench:grad`, issue 5 §5)', '', `Machine: ${C.machineLine(m)}.`, ''];
  if (r.grad) {
    const g = r.grad;
    lines.push(
      `BERT-like tagger (d=256, 4 layers, 4 heads, FFN 1024, vocab 8000, heads pos/ner; ${g.params.toLocaleString('en')} parameters), batch ${BATCH} x ${TOKENS}, intra-op threads = ${m.cores}, graph optimisation 'all', ${RUNS} interleaved runs after ${WARMUP} warm-up${g.fused ? '' : ', LayerNorm fusion off'}:`,
      '',
      '| | median | min |',
      '|---|---|---|',
      `| inference forward (the exported model) | ${g.forwardMs.toFixed(1)} ms | ${g.forwardMin.toFixed(1)} ms |`,
      `| forward + backward (training graph, all ${g.nParams} parameter gradients) | ${g.trainMs.toFixed(1)} ms | ${g.trainMin.toFixed(1)} ms |`,
      '',
      `Ratio of medians **${g.ratio.toFixed(2)}x** (target <= ${TARGET_RATIO}x: ${g.ratio <= TARGET_RATIO ? 'met' : `missed by ${(g.ratio - TARGET_RATIO).toFixed(2)}x`}); ratio of minimums ${(g.trainMin / g.forwardMin).toFixed(2)}x.`,
      '',
      `The same training run fetching only the loss (onnxruntime still runs every node): ${g.unfetchedMs.toFixed(1)} ms = ${(g.unfetchedMs / g.forwardMs).toFixed(2)}x; returning the gradients through onnxruntime-node's binding costs the difference, ${(g.trainMs - g.unfetchedMs).toFixed(1)} ms.`,
      '',
    );
  }
  if (r.build) lines.push(`BERT-base-size model (${r.build.params.toLocaleString('en')} parameters, ${r.build.mb} MB): \`loadModel\` ${r.build.loadMs.toFixed(0)} ms, \`buildTrainingGraph\` **${r.build.buildMs.toFixed(0)} ms** (target <= ${TARGET_BUILD_S} s: ${r.build.buildMs <= TARGET_BUILD_S * 1000 ? 'met' : 'missed'}).`);
  return lines.join('\n');
}

(async () => {
  const m = C.printMachine();
  const results = {};
  if (!C.flag('only-build')) results.grad = await forwardVsBackward();
  if (!C.flag('skip-build')) results.build = buildTime();
  if (results.grad && results.build) C.writeResults('bench-grad', resultsMarkdown(m, results));
  fs.writeFileSync(path.join(C.OUT, 'bench-grad.json'), `${JSON.stringify({ machine: C.machine(), batch: BATCH, tokens: TOKENS, runs: RUNS, ...results }, null, 1)}\n`);
})().catch((e) => C.die(e.message.split('\n')[0]));
