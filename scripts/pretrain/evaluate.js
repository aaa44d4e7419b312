#!/usr/bin/env node
// MLM accuracy of a model with an `mlm_logits` head on held-out text, against unigram baselines
// (scripts/pretrain-encoder.sh; needs the build in dist/).
//
//   node scripts/pretrain/evaluate.js MODEL.onnx TOKENIZER.json TRAIN.txt HELD_OUT.txt [--seed S] [--max-length N]
//
// The held-out lines are masked exactly as `grl-onnx train --eval` masks them (Masker with the
// run's seed, stream EVAL_STREAM, index = line number among the examples), so on the dev file the
// accuracy equals the trainer's last eval. Baselines, from the training text's unigram counts of
// maskable (non-special) tokens:
//   most frequent: always predict the most frequent training token (the unigram argmax);
//   best constant: always predict the held-out masked tokens' own most frequent one (in hindsight);
//   unigram: cross-entropy of predicting with the add-one-smoothed unigram distribution, and the
//            expected accuracy of sampling from it (mean p(label)).
// Prints one JSON object.
'use strict';
const path = require('path');
const ort = require('onnxruntime-node');
const dist = (m) => require(path.join(__dirname, '..', '..', 'dist', m));
const { loadTokenizer } = dist('tokenize/tokenizer');
const { loadExamples } = dist('data/examples');
const { Masker, EVAL_STREAM } = dist('data/masking');
const { IGNORE_INDEX, makeBatch } = dist('data/jsonl');

function option(args, name, dflt) {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : dflt;
}

async function main() {
  const args = process.argv.slice(2);
  const [modelFile, tokFile, trainFile, heldOutFile] = args;
  if (!heldOutFile) throw new Error('usage: evaluate.js MODEL.onnx TOKENIZER.json TRAIN.txt HELD_OUT.txt [--seed S] [--max-length N]');
  const seed = option(args, '--seed', 0);
  const maxLength = option(args, '--max-length', 128);
  const tok = loadTokenizer(tokFile);
  const masker = new Masker({ maskTokenId: tok.maskTokenId, vocabSize: tok.vocabSize, specialIds: tok.specialIds, padTokenId: tok.padTokenId, seed });

  const spec = { inputs: ['input_ids', 'attention_mask', 'token_type_ids'], optionalInputs: { attention_mask: 1, token_type_ids: 0 }, labels: [] };
  const text = (file) => loadExamples(file, spec, { tokenizer: tok, labels: [], format: 'text', maxLength });
  const counts = new Float64Array(tok.vocabSize);
  let total = 0;
  for (const e of text(trainFile)) {
    for (const id of e.inputs.input_ids) {
      if (!masker.isMaskable(id)) continue;
      counts[id]++;
      total++;
    }
  }
  let top = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i] > counts[top]) top = i;
  const maskable = counts.reduce((n, c, i) => n + (masker.isMaskable(i) ? 1 : 0), 0);
  const smoothed = (id) => (counts[id] + 1) / (total + maskable);

  const held = text(heldOutFile).map((e, i) => masker.maskExample(e, EVAL_STREAM, i, 'input_ids', ['mlm']));
  const session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: 2 });
  const batchSpec = { ...spec, labels: [{ key: 'mlm', tokenLevel: true }] };
  const s = { count: 0, hits: 0, loss: 0, topHits: 0, uniLoss: 0, uniExpected: 0 };
  const V = tok.vocabSize;
  const heldCounts = new Map();
  for (let b = 0; b < held.length; b += 64) {
    const batch = makeBatch(held.slice(b, b + 64), batchSpec);
    const feeds = {};
    for (const n of session.inputNames) feeds[n] = new ort.Tensor('int64', batch.inputs[n], [batch.size, batch.seqLen]);
    const logits = (await session.run(feeds)).mlm_logits.data;
    const labels = batch.labels.mlm;
    for (let p = 0; p < labels.length; p++) {
      const y = Number(labels[p]);
      if (y === IGNORE_INDEX) continue;
      const row = logits.subarray(p * V, (p + 1) * V);
      let arg = 0;
      for (let k = 1; k < V; k++) if (row[k] > row[arg]) arg = k;
      let z = 0;
      for (let k = 0; k < V; k++) z += Math.exp(row[k] - row[arg]);
      s.loss += Math.log(z) + row[arg] - row[y];
      s.hits += arg === y ? 1 : 0;
      s.topHits += y === top ? 1 : 0;
      heldCounts.set(y, (heldCounts.get(y) ?? 0) + 1);
      s.uniLoss -= Math.log(smoothed(y));
      s.uniExpected += counts[y] / total;
      s.count++;
    }
  }
  await session.release();
  const r = (x) => Math.round(x * 1e4) / 1e4;
  console.log(JSON.stringify({
    model: modelFile,
    heldOut: heldOutFile,
    sentences: held.length,
    maskedTokens: s.count,
    seed,
    mlm: { accuracy: r(s.hits / s.count), loss: r(s.loss / s.count) },
    mostFrequent: { token: tok.idToToken(top), accuracy: r(s.topHits / s.count) },
    bestConstant: (() => {
      const [id, n] = [...heldCounts].reduce((a, b) => (b[1] > a[1] ? b : a));
      return { token: tok.idToToken(id), accuracy: r(n / s.count) };
    })(),
    unigram: { loss: r(s.uniLoss / s.count), expectedAccuracy: r(s.uniExpected / s.count) },
    trainTokens: total,
  }));
}

main().catch((e) => {
  console.error(`evaluate.js: ${e.message}`);
  process.exit(1);
});
