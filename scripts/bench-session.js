#!/usr/bin/env node
/**
 * TrainingSession overhead benchmark (issue 3 §1 "Efficiency"; a script, not a test).
 *
 *   npm run build && node scripts/bench-session.js [--params 4194304] [--steps 20]
 *
 * A training graph whose compute is trivial (loss = Σ x·W over a [8, d] batch) and
 * whose parameter vector is large, so what it measures is the session's per-step
 * traffic: feeding parameters, fetching gradients, and the flat optimizer update.
 * Prints the median time of runTrainStep and runOptimizerStep (AdamW and SGD, with the
 * fused JS update and with optimizer_model.onnx in onnxruntime), the
 * time of a plain JS AdamW loop over the same N floats for comparison, and how many
 * parameter-sized ArrayBuffers per step the onnxruntime-node binding allocates
 * (process.memoryUsage().arrayBuffers sampled around one step, GC forced).
 */
'use strict';

const os = require('os');
const ort = require('onnxruntime-node');
const { serializeModel } = require('../dist/onnx/io');
const { makeTensor } = require('../dist/onnx/tensor');
const { serializeCheckpoint, emptyProperties } = require('../dist/train/checkpoint');
const { buildOptimizerModel } = require('../dist/train/optimizer');
const { TrainingSession } = require('../dist/train/session');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const N = arg('params', 4 * 1024 * 1024);
const STEPS = arg('steps', 20);
const d = Math.round(Math.sqrt(N));
const n = d * d;
const B = 8;

const vi = (name, elem, dims) => ({ name, type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((x) => (typeof x === 'number' ? { dim_value: x } : { dim_param: x })) } } } });
const node = (op, input, output, attribute = []) => ({ name: output, op_type: op, input, output: [output], attribute });

function trainingModel() {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'bench',
      node: [
        node('MatMul', ['x', 'W'], 'y'),
        node('ReduceSum', ['y'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }]),
        node('Shape', ['y'], 'y_shape'),
        node('Expand', ['one', 'y_shape'], 'dy'),
        node('Transpose', ['x'], 'xT', [{ name: 'perm', type: 7, ints: [1, 0] }]),
        node('MatMul', ['xT', 'dy'], 'W_grad'),
      ],
      input: [vi('x', 1, ['batch', d]), vi('W', 1, [d, d])],
      output: [vi('loss', 1, []), vi('W_grad', 1, [d, d])],
      initializer: [makeTensor('one', 1, [], Float32Array.of(1))],
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function benchOptimizer(kind, backend) {
  const W = new Float32Array(n).map((_, i) => Math.sin(i) * 0.01);
  const checkpoint = serializeCheckpoint({
    version: 2, trainable: [{ name: 'W', dims: [d, d], data: W }], frozen: [], optimizerGroups: [],
    properties: { ...emptyProperties(), strings: { 'grl-onnx.session': JSON.stringify({ optimizer: kind, learningRate: 1e-3 }) } },
  });
  const s = await TrainingSession.create({ checkpointState: checkpoint, trainModel: serializeModel(trainingModel()), optimizerModel: serializeModel(buildOptimizerModel(kind)), optimizerBackend: backend });
  const x = new ort.Tensor('float32', new Float32Array(B * d).fill(0.5), [B, d]);
  const train = [];
  const opt = [];
  for (let k = 0; k < STEPS + 3; k++) {
    let t0 = process.hrtime.bigint();
    await s.runTrainStep({ x });
    const tt = ms(t0);
    t0 = process.hrtime.bigint();
    await s.runOptimizerStep();
    const to = ms(t0);
    await s.lazyResetGrad();
    if (k >= 3) { train.push(tt); opt.push(to); }
  }
  // Native ArrayBuffers the binding allocates during one full step (each returned output is a copy).
  let perStep = NaN;
  if (global.gc) {
    global.gc();
    const before = process.memoryUsage().arrayBuffers;
    const keep = [];
    keep.push(await s.runTrainStep({ x }));
    await s.runOptimizerStep();
    await s.lazyResetGrad();
    perStep = (process.memoryUsage().arrayBuffers - before) / (n * 4);
    keep.length = 0;
  }
  const kernel = s.updateKernel;
  await s.release();
  return { train: median(train), opt: median(opt), perStep, kernel };
}

function jsAdamW() {
  const p = new Float32Array(n).fill(0.1);
  const g = new Float32Array(n).fill(0.01);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const times = [];
  for (let t = 1; t <= Math.min(STEPS, 10); t++) {
    const t0 = process.hrtime.bigint();
    const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    const stepSize = lr / (1 - b1 ** t);
    const bc2 = Math.sqrt(1 - b2 ** t);
    for (let i = 0; i < n; i++) {
      const gi = g[i];
      const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
      const vi2 = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
      p[i] = p[i] * (1 - lr * wd) - (stepSize * mi) / (Math.sqrt(vi2) / bc2 + eps);
    }
    times.push(ms(t0));
  }
  return median(times);
}

(async () => {
  console.log(`TrainingSession overhead: N = ${n} parameters (${(n * 4 / 2 ** 20).toFixed(1)} MiB), batch ${B}x${d}, ${os.availableParallelism()} cores, onnxruntime-node ${require('onnxruntime-node/package.json').version}, node ${process.version}`);
  for (const [kind, backend] of [['adamw', 'js'], ['adamw', 'onnx'], ['sgd', 'js'], ['sgd', 'onnx']]) {
    const r = await benchOptimizer(kind, backend);
    console.log(`${kind.padEnd(5)} ${backend.padEnd(4)} (${r.kernel.padEnd(9)})  runTrainStep ${r.train.toFixed(1)} ms   runOptimizerStep ${r.opt.toFixed(1)} ms   binding copies/step ${Number.isNaN(r.perStep) ? '(run with --expose-gc)' : r.perStep.toFixed(2)} x params`);
  }
  console.log(`plain JS AdamW loop over the same N floats: ${jsAdamW().toFixed(1)} ms`);
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
