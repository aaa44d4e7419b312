#!/usr/bin/env node
// Collects what scripts/pretrain-encoder.sh measured into models/pretrained/results.json.
//
//   node scripts/pretrain/results.js WORK_DIR OUT.json SECONDS
'use strict';
const fs = require('fs');
const path = require('path');

const [work, out, seconds] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(path.join(work, f), 'utf8'));
const lines = fs.readFileSync(path.join(work, 'train.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const summary = lines.find((l) => l.summary).summary;
const probe = (f) => {
  const r = read(f);
  return { accuracy: r.accuracy, majority: r.majority.accuracy, control: r.control.accuracy, selectivity: r.selectivity, trainRows: r.trainRows, heldOutRows: r.rows };
};
const mlm = (f) => {
  const r = read(f);
  return { maskedTokens: r.maskedTokens, accuracy: r.mlm.accuracy, loss: r.mlm.loss, mostFrequent: r.mostFrequent, bestConstant: r.bestConstant, unigram: r.unigram };
};
const results = {
  pretraining: {
    steps: summary.total_steps,
    wallSeconds: Number(seconds),
    medianStepMs: Math.round(summary.median_step_ms),
    finalTrainLoss: summary.loss,
    devEvals: lines.filter((l) => l.eval).map((l) => ({ step: l.eval.step, loss: l.eval.heads.mlm.loss, accuracy: l.eval.heads.mlm.accuracy })),
  },
  mlm: { dev: mlm('mlm-dev.json'), test: mlm('mlm-test.json'), untrainedTest: mlm('mlm-test-init.json') },
  posProbe: { encoder: probe('probe-encoder.json'), untrained: probe('probe-init.json') },
};
fs.writeFileSync(out, `${JSON.stringify(results, null, 1)}\n`);
console.log(`wrote ${out}`);
