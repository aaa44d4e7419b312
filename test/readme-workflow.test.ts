// The README's "From your own encoder" section, run as written: every `$ grl-onnx`
// command between the workflow markers runs through the built CLI (in a temp folder
// where models/ and data/ are the repository's), exits 0, and prints every output
// line the README shows for it, except measured numbers (accuracies, losses and
// times move with the thread count), JSON step lines and `...` elisions.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { BIN, ROOT, ensureBuilt } from './helpers/bin';

interface Step { command: string; shown: string[] }

/** Lines with measured numbers (accuracies, losses, times) are shown, not compared: they move with thread counts. */
const MEASURED = /\d%|\d pp|loss \d|trace \d|\d ms|\d s\b/;

/** Commands and their shown output from the README's code blocks between the markers. */
export function workflowSteps(readme: string): Step[] {
  const begin = readme.indexOf('<!-- workflow:begin -->');
  const end = readme.indexOf('<!-- workflow:end -->');
  if (begin < 0 || end < begin) throw new Error('README.md has no workflow markers');
  const steps: Step[] = [];
  let inBlock = false;
  let current: Step | undefined;
  let continuing = false;
  for (const line of readme.slice(begin, end).split('\n')) {
    if (line.startsWith('```')) {
      inBlock = !inBlock;
      current = undefined;
      continue;
    }
    if (!inBlock) continue;
    if (continuing && current) {
      current.command += ` ${line.trim().replace(/\\$/, '').trim()}`;
      continuing = line.trimEnd().endsWith('\\');
      continue;
    }
    if (line.startsWith('$ grl-onnx ')) {
      current = { command: line.slice(2).replace(/\\$/, '').trim(), shown: [] };
      continuing = line.trimEnd().endsWith('\\');
      steps.push(current);
    } else if (current && line.trim() && !line.includes('...') && !line.trimStart().startsWith('{') && !MEASURED.test(line)) {
      current.shown.push(line);
    }
  }
  return steps;
}

/** Split a shell-like command line (no quoting is used in the README's commands). */
const argv = (cmd: string) => cmd.split(/\s+/).filter(Boolean);

describe('README "From your own encoder"', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const steps = workflowSteps(readme);

  test('the section has the whole path: inspect, heads add, data prepare, train, probe, erase', () => {
    const verbs = steps.map((s) => argv(s.command).slice(1, 3).join(' '));
    for (const v of ['inspect', 'heads add', 'data prepare', 'train', 'probe', 'erase']) expect(verbs.some((x) => x.startsWith(v))).toBe(true);
  });

  test('every command runs as written and prints what the README shows', () => {
    ensureBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-readme-wf-'));
    for (const d of ['models', 'data']) fs.symlinkSync(path.join(ROOT, d), path.join(dir, d));
    for (const s of steps) {
      const r = spawnSync(process.execPath, [BIN, ...argv(s.command).slice(1)], { cwd: dir, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
      if (r.status !== 0) throw new Error(`${s.command}\nexit ${r.status}\n${r.stderr}`);
      const out = `${r.stdout}${r.stderr}`;
      for (const line of s.shown) {
        if (!out.includes(line.trim())) throw new Error(`${s.command}\nthe README shows:\n  ${line.trim()}\nbut the command printed:\n${out}`);
      }
    }
  });
});
