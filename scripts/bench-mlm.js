#!/usr/bin/env node
/**
 * MLM training step: the masked-row gathering of src/grad/mlm.ts against plain cross-entropy over
 * the full [B, T, vocab] logits, on models/encoders/bert-encoder.onnx (vocab 30,522) with an MLM
 * head tied to the word embeddings. Prints median step times and their ratio (a script, never a
 * timed test; run it on an idle machine for numbers worth quoting).
 *
 *   node scripts/bench-mlm.js [--batch 16] [--tokens 128] [--runs 5]
 */
'use strict';

const path = require('path');
const { ROOT, ensureBuilt, sessionOptions, median, interleaved, intArg, printMachine } = require('./bench-common');

async function main() {
  ensureBuilt();
  const ort = require('onnxruntime-node');
  const lib = require(path.join(ROOT, 'dist', 'index.js'));
  const { buildTrainingGraph } = require(path.join(ROOT, 'dist', 'grad', 'training.js'));
  const { tensorToFloat32 } = require(path.join(ROOT, 'dist', 'onnx', 'tensor.js'));
  const B = intArg('batch', 16);
  const T = intArg('tokens', 128);
  const runs = intArg('runs', 5);
  printMachine();
  const model = lib.addHeads(lib.loadModel(path.join(ROOT, 'models', 'encoders', 'bert-encoder.onnx')), [{ name: 'mlm', kind: 'mlm' }]).model;
  // 15% of the positions masked, the rest -100, as `--loss mlm` makes them.
  const ids = new BigInt64Array(B * T);
  const labels = new BigInt64Array(B * T).fill(-100n);
  let masked = 0;
  for (let k = 0; k < B * T; k++) {
    ids[k] = BigInt(1000 + ((k * 7919) % 20000));
    if ((k * 2654435761) % 100 < 15) { labels[k] = ids[k]; ids[k] = 103n; masked++; }
  }
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]),
  };
  const inits = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
  const sessions = {};
  for (const [name, gather] of [['gathered', true], ['full logits', false]]) {
    const tg = buildTrainingGraph(model, { losses: [{ head: 'mlm' }], gatherMaskedRows: gather });
    const f = { ...feeds, [tg.heads[0].labelInput]: new ort.Tensor('int64', labels, [B, T]) };
    for (const p of tg.params) if (p.trainable) f[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)), p.dims);
    const s = await ort.InferenceSession.create(lib.serializeModel(tg.training), sessionOptions());
    sessions[name] = async () => { await s.run(f); };
  }
  const times = await interleaved(sessions, { warmup: 1, runs });
  console.log(`MLM training step, B=${B}, T=${T}, vocab 30,522, ${masked} masked positions (${((100 * masked) / (B * T)).toFixed(1)}%)`);
  for (const [name, t] of Object.entries(times)) console.log(`  ${name.padEnd(12)} median ${median(t).toFixed(1)} ms`);
  console.log(`  full / gathered: ${(median(times['full logits']) / median(times.gathered)).toFixed(2)}x`);
}

main().catch((e) => {
  console.error(`bench-mlm: ${e.message}`);
  process.exit(1);
});
