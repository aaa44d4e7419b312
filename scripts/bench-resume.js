#!/usr/bin/env node
/**
 * Peak RSS of TrainingSession.create from a checkpoint, each mode in its own process:
 *   path  - the checkpoint file's tensors read straight into the session's buffers (openCheckpoint)
 *   bytes - the whole file read into one Buffer first (loadCheckpoint), then copied in (the old resume)
 *
 *   npm run build && node scripts/bench-resume.js ARTIFACTS_DIR [CHECKPOINT]
 */
const cp = require('child_process');
const fs = require('fs');

if (process.argv[2] === '--child') {
  const [, , , mode, artifactsDir, checkpoint] = process.argv;
  const { TrainingSession } = require('../dist/train/session');
  (async () => {
    const checkpointState = mode === 'bytes' ? fs.readFileSync(checkpoint) : checkpoint;
    const s = await TrainingSession.create({ artifactsDir, checkpointState });
    console.log(JSON.stringify({ step: s.optimizerStep, params: s.getParametersSize() }));
    await s.release();
  })().catch((e) => { console.error(e.message); process.exit(1); });
} else {
  const [artifactsDir, checkpoint = `${process.argv[2]}/checkpoint`] = process.argv.slice(2);
  if (!artifactsDir) throw new Error('usage: node scripts/bench-resume.js ARTIFACTS_DIR [CHECKPOINT]');
  const size = fs.statSync(checkpoint).size;
  const rss = {};
  for (const mode of ['path', 'bytes']) {
    const r = cp.spawnSync('/usr/bin/time', ['-f', 'maxrss_kb %M', process.execPath, __filename, '--child', mode, artifactsDir, checkpoint], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${mode}: ${r.stderr}`);
    rss[mode] = Number(/maxrss_kb (\d+)/.exec(r.stderr)[1]) / 2 ** 20;
    console.log(`${mode.padEnd(5)} peak RSS ${rss[mode].toFixed(2)} GiB  ${r.stdout.trim()}`);
  }
  console.log(`checkpoint ${(size / 2 ** 30).toFixed(2)} GiB; path saves ${(rss.bytes - rss.path).toFixed(2)} GiB (ratio ${(rss.path / rss.bytes).toFixed(2)})`);
}
