// Test helper program: runs ONE job on ONNX Runtime's own training runtime, onnxruntime-web
// 1.19.2's training wasm, and prints the result as JSON. Run by test/helpers/ort-training.ts in
// a child process, because the bundle loads its wasm glue with a dynamic import() of an ES
// module, which jest's module sandbox refuses; a child also lets a hung ORT call be killed.
//
// Job (JSON on stdin): { files: {checkpointState, trainModel, evalModel, optimizerModel} (paths),
//   batches: [{ input: {type, data, dims} }], steps: [[batch, ...], ...], evalBatch?, readParams? }
// Each step is lazyResetGrad, runTrainStep per batch, runOptimizerStep. Result: the session's
// input/output names, the train losses, the eval outputs and (last, see below) the parameters;
// or { error } with ORT's message.
//
// Pitfalls of onnxruntime-web 1.19.2 handled here:
//  - runTrainStep feeds by position, not by name: feeds are built in trainingInputNames order;
//  - getContiguousParameters frees memory it never allocated (a later step can hang): it is
//    called once, after the last step;
//  - runEvalStep names its results by trainingOutputNames[i] instead of evalOutputNames[i], so
//    only eval outputs whose name matches the training output at the same position are returned;
//  - C++ exceptions arrive as bare numbers, pointers to the exception object in the wasm
//    memory: errorText reads the message from there (the memory is captured at instantiation).
'use strict';
const fs = require('fs');
const path = require('path');

const DIST = path.resolve(__dirname, '../../node_modules/onnxruntime-web/dist');
let memory;
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
  const result = await instantiate.apply(this, args);
  const instance = result.instance ?? result;
  const candidates = [...Object.values(args[1] ?? {}).flatMap((m) => Object.values(m)), ...Object.values(instance.exports)];
  memory = candidates.find((v) => v instanceof WebAssembly.Memory) ?? memory;
  return result;
};
const ort = require(path.join(DIST, 'ort.training.wasm.min.js'));
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = `${DIST}/`;

/** The message of an onnxruntime-web error: a JS error's, or the C++ exception's text. */
function errorText(e) {
  if (typeof e !== 'number') return e instanceof Error ? e.message : String(e);
  if (!memory) return `C++ exception at ${e} (wasm memory not captured)`;
  const bytes = new Uint8Array(memory.buffer);
  const view = new DataView(memory.buffer);
  const textAt = (p) => {
    let end = p;
    while (end < bytes.length && end - p < 8192 && bytes[end] >= 9 && bytes[end] < 127) end++;
    return bytes[end] === 0 ? Buffer.from(bytes.subarray(p, end)).toString('latin1') : '';
  };
  // The exception object holds its what() text inline or behind a pointer: take the longest.
  let best = '';
  for (let off = 0; off < 256 && e + off + 4 <= bytes.length; off += 4) {
    const p = view.getUint32(e + off, true);
    for (const s of [textAt(e + off), p > 0 && p < bytes.length ? textAt(p) : '']) if (s.length > best.length) best = s;
  }
  return best || `C++ exception at ${e}`;
}

function tensor(t) {
  const data = t.type === 'int64' ? BigInt64Array.from(t.data, BigInt) : Float32Array.from(t.data);
  return new ort.Tensor(t.type, data, t.dims);
}

function inOrder(names, batch) {
  const feeds = {};
  for (const n of names) {
    if (!(n in batch)) throw new Error(`no feed for ORT input '${n}'`);
    feeds[n] = tensor(batch[n]);
  }
  return feeds;
}

async function run(job) {
  const read = (p) => new Uint8Array(fs.readFileSync(p));
  const f = job.files;
  const s = await ort.TrainingSession.create({
    checkpointState: read(f.checkpointState), trainModel: read(f.trainModel),
    evalModel: f.evalModel && read(f.evalModel), optimizerModel: f.optimizerModel && read(f.optimizerModel),
  });
  const out = {
    trainingInputNames: s.trainingInputNames, trainingOutputNames: s.trainingOutputNames,
    evalInputNames: s.evalInputNames, evalOutputNames: s.evalOutputNames, losses: [],
  };
  for (const step of job.steps ?? []) {
    await s.lazyResetGrad();
    for (const k of step) {
      const r = await s.runTrainStep(inOrder(s.trainingInputNames, job.batches[k]));
      out.losses.push(r[s.trainingOutputNames[0]].data[0]);
    }
    await s.runOptimizerStep();
  }
  if (job.evalBatch !== undefined) {
    const r = await s.runEvalStep(inOrder(s.evalInputNames, job.batches[job.evalBatch]));
    // Only results whose (mis)naming is right: eval outputs at the same positions as training outputs of the same name.
    const named = s.evalOutputNames.filter((n, i) => s.trainingOutputNames[i] === n);
    out.evalOutputs = Object.fromEntries(named.map((n) => [n, Array.from(r[n].data, Number)]));
  }
  if (job.readParams) out.params = Array.from((await s.getContiguousParameters(true)).data);
  return out;
}

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  // Exit only once the (large) output is flushed: ORT's runtime may keep the process alive.
  const reply = (o) => process.stdout.write(JSON.stringify(o), () => process.exit(0));
  run(JSON.parse(input)).then(reply, (e) => reply({ error: errorText(e) }));
});
