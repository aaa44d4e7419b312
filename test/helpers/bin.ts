// Test helpers: the built CLI (bin/grl-onnx.js → dist/), rebuilt when src/ is newer.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'grl-onnx.js');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

function newestSource(d: string): number {
  let t = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/** Build dist/ when it is older than src/ (tsc still emits when another module has a type error). */
export function ensureBuilt(): void {
  if (!fs.existsSync(MAIN) || fs.statSync(MAIN).mtimeMs < newestSource(path.join(ROOT, 'src'))) {
    spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', ROOT], { stdio: 'ignore' });
  }
  if (!fs.existsSync(MAIN)) throw new Error('dist/cli/main.js is missing after building');
}
