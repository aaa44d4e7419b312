// `grl-onnx experiment --quick` end to end (the real trainer, probes and vega
// charts in onnxruntime-node), plus the experiment's config and model helpers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../src/cli/main';
import { loadModel } from '../src/onnx/io';
import { tensorToFloat32 } from '../src/onnx/tensor';
import { mergeConfig, resolveConfig, defaultConfig, trainSeeds } from '../src/experiment/config';
import { freshHead, headParameters, withWeightsOf } from '../src/experiment/models';
import type { ExperimentReport } from '../src/experiment/run';


// Whole experiments run in beforeAll: minutes when the machine is loaded.
jest.setTimeout(600_000);
const ROOT = path.join(__dirname, '..');
const INIT = path.join(ROOT, 'models/tiny-tagger-init.onnx');
const TAGGER_CONFIG = path.join(ROOT, 'configs/tagger.json');

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, stderr: { write: (s: string) => err.push(s) } } };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'grl-exp-test-'));
}

describe('experiment --quick', () => {
  const dir = tmp();
  const dir2 = tmp();
  let report: ExperimentReport;
  let stderr = '';

  beforeAll(async () => {
    const a = io();
    const code = await runCli(['experiment', TAGGER_CONFIG, '--quick', '--out', dir, '--threads', '1', '--json'], a.io);
    stderr = a.err.join('');
    expect(code).toBe(0);
    report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    const b = io();
    expect(await runCli(['experiment', TAGGER_CONFIG, '--quick', '--out', dir2, '--threads', '1', '--json'], b.io)).toBe(0);
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(dir2, { recursive: true, force: true });
  });

  test('writes a parsable report.json with every stage', () => {
    const q = resolveConfig(undefined, true);
    expect(report.config.amnesic.steps).toBe(q.amnesic.steps);
    expect(report.model.adversary).toBe('pos');
    expect(report.model.target).toBe('ner');
    expect(report.model.classes).toEqual({ pos: 17, ner: 7 });
    // --quick keeps one training seed: the first default one.
    expect(q.seeds.train).toEqual([0]);
    expect(report.perSeed.map((s) => s.seed)).toEqual([0]);
    expect(report.trainability.seed).toBe(0);
    const [only] = report.perSeed;
    for (const stage of [report.baseline, only.after]) {
      for (const h of ['pos', 'ner']) {
        const p = stage.probes[h];
        expect(p.accuracy).toBeGreaterThanOrEqual(0);
        expect(p.accuracy).toBeLessThanOrEqual(1);
        expect(p.rows).toBeGreaterThan(100);
        expect(p.control?.accuracy).toEqual(expect.any(Number));
        expect(p.selectivity).toBeCloseTo(p.accuracy - (p.control?.accuracy ?? NaN), 12);
        expect(stage.heads[h].rows).toBeGreaterThan(100);
      }
    }
    const curve = only.amnesic.curve;
    expect(curve.map((c) => c.step)).toEqual(Array.from({ length: q.amnesic.steps }, (_, i) => i + 1));
    // dann: λ starts at 0 and rises.
    expect(curve[0].lambda).toBe(0);
    expect(curve[q.amnesic.steps - 1].lambda).toBeGreaterThan(0.9 * q.amnesic.lambda);
    expect(curve[q.amnesic.steps - 1].lambda).toBeLessThanOrEqual(q.amnesic.lambda + 1e-6);
    for (const run of [report.trainability.original, report.trainability.amnesic]) {
      expect(run.devAccuracy.map((p) => p.step)).toEqual([0, 4, 8]);
      expect(run.trainLoss).toHaveLength(q.trainability.steps);
    }
    expect(report.trainability.freshParams.length).toBeGreaterThan(0);
    const leakage = only.after.probes.pos.accuracy - only.after.probes.pos.majority.accuracy;
    expect(only.findings.leakage).toBeCloseTo(leakage, 12);
    // One seed: mean, min and max are that seed's number.
    expect(report.findings.after.leakage.mean).toBeCloseTo(leakage, 12);
    expect(report.findings.after.leakage.min).toBeCloseTo(leakage, 12);
    expect(report.findings.after.leakage.max).toBeCloseTo(leakage, 12);
    expect(Object.keys(report.timings)).toEqual(expect.arrayContaining(['baseline', 'amnesic', 'after', 'trainability', 'total']));
  });

  test('the baseline pos probe on the shipped encoder is far above majority', () => {
    const p = report.baseline.probes.pos;
    expect(p.accuracy - p.majority.accuracy).toBeGreaterThan(0.3);
  });

  test('report.html is offline and has the charts as inline SVG', () => {
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBe(4);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?https?:/i);
    expect(html).not.toMatch(/@import/);
    expect(html).toContain('Probe accuracy at');
  });

  test('summary.md states the leakage and the target result', () => {
    const md = fs.readFileSync(path.join(dir, 'summary.md'), 'utf8');
    expect(md).toMatch(/Leakage: the post-hoc pos probe is still [-+]\d+\.\d pp above the majority baseline/);
    expect(md).toMatch(/The ner head's dev accuracy went from \d+\.\d% to \d+\.\d%/);
    expect(md).toContain('--quick');
  });

  test('progress goes to stderr, a line per stage', () => {
    for (const s of ['[data]', '[baseline]', '[amnesic]', '[after]', '[trainability]']) expect(stderr).toContain(s);
  });

  test('is reproducible with the same seeds', () => {
    const again = JSON.parse(fs.readFileSync(path.join(dir2, 'report.json'), 'utf8')) as ExperimentReport;
    const strip = (r: ExperimentReport) => JSON.stringify({
      ...r, timings: null,
      perSeed: r.perSeed.map((s) => ({ ...s, amnesic: { ...s.amnesic, medianStepMs: null, model: null } })),
      trainability: { ...r.trainability, original: { ...r.trainability.original, medianStepMs: null }, amnesic: { ...r.trainability.amnesic, medianStepMs: null } },
    });
    expect(strip(again)).toBe(strip(report));
  });
});

describe('experiment --quick with seeds.train [0, 1]', () => {
  const dir = tmp();
  let report: ExperimentReport;
  let stdout = '';

  beforeAll(async () => {
    const cfg = path.join(dir, 'two-seeds.json');
    fs.writeFileSync(cfg, JSON.stringify({ kind: 'tagger', seeds: { train: [0, 1] } }));
    const a = io();
    expect(await runCli(['experiment', cfg, '--quick', '--out', path.join(dir, 'out'), '--threads', '1'], a.io)).toBe(0);
    stdout = a.out.join('');
    report = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'report.json'), 'utf8'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('runs amnesic training and the after-probes once per seed, the baseline and trainability once', () => {
    expect(report.seeds.train).toEqual([0, 1]);
    expect(report.perSeed.map((s) => s.seed)).toEqual([0, 1]);
    for (const s of report.perSeed) {
      expect(s.amnesic.curve).toHaveLength(report.config.amnesic.steps);
      expect(s.after.probes.pos.rows).toBeGreaterThan(100);
      expect(s.after.heads.ner.rows).toBeGreaterThan(100);
    }
    // Different seeds train differently.
    expect(report.perSeed[0].amnesic.curve).not.toEqual(report.perSeed[1].amnesic.curve);
    expect(report.trainability.seed).toBe(0);
    expect(report.findings.trainabilitySeed).toBe(0);
    expect(fs.existsSync(path.join(dir, 'out', 'runs', 'amnesic-seed0'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'out', 'runs', 'amnesic-seed1'))).toBe(true);
  });

  test('each headline number has the mean, min and max over the seeds', () => {
    const per = (pick: (s: ExperimentReport['perSeed'][number]) => number) => report.perSeed.map(pick);
    const expected = {
      adversaryProbeAfter: per((s) => s.after.probes.pos.accuracy),
      leakage: per((s) => s.after.probes.pos.accuracy - s.after.probes.pos.majority.accuracy),
      adversaryControlAfter: per((s) => s.after.probes.pos.control?.accuracy ?? NaN),
      adversarySelectivityAfter: per((s) => s.after.probes.pos.accuracy - (s.after.probes.pos.control?.accuracy ?? NaN)),
      targetHeadAfter: per((s) => s.after.heads.ner.accuracy),
      targetHeadNonMajorityAfter: per((s) => s.after.heads.ner.nonMajorityAccuracy),
    };
    for (const [key, values] of Object.entries(expected)) {
      const got = report.findings.after[key as keyof typeof expected];
      expect(values).toHaveLength(2);
      expect(got.mean).toBeCloseTo((values[0] + values[1]) / 2, 12);
      expect(got.min).toBeCloseTo(Math.min(...values), 12);
      expect(got.max).toBeCloseTo(Math.max(...values), 12);
    }
  });

  test('stdout, summary.md and report.html give the mean and the range across seeds', () => {
    const a = report.findings.after.adversaryProbeAfter;
    const p = (x: number) => `${(x * 100).toFixed(1)}%`;
    expect(stdout).toContain(`pos probe: ${p(report.findings.adversaryProbeBefore)} → ${p(a.mean)} mean over 2 seeds (${p(a.min)}–${p(a.max)})`);
    const md = fs.readFileSync(path.join(dir, 'out', 'summary.md'), 'utf8');
    expect(md).toContain(`mean over 2 seeds (${p(a.min)}–${p(a.max)})`);
    expect(md).toMatch(/Leakage: the post-hoc pos probe is still [-+]\d+\.\d pp above the majority baseline on average over 2 seeds/);
    expect(md).toContain('first training seed (0)');
    const html = fs.readFileSync(path.join(dir, 'out', 'report.html'), 'utf8');
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBe(4);
    expect(html).toContain('mean over 2 training seeds, black points each seed');
  });
});

describe('experiment config', () => {
  test('a config overrides nested values; unknown keys and wrong types are errors', () => {
    const base = defaultConfig('/pkg');
    const c = mergeConfig(base, { amnesic: { lambda: 0.5 }, probe: { kind: 'mlp' }, seeds: { train: 7 } });
    expect(c.amnesic).toEqual({ ...base.amnesic, lambda: 0.5 });
    expect(c.probe.kind).toBe('mlp');
    expect(c.seeds).toEqual({ ...base.seeds, train: 7 });
    expect(() => mergeConfig(base, { amnesic: { lamda: 1 } } as never)).toThrow("config.amnesic: unknown key 'lamda'");
    expect(() => mergeConfig(base, { amnesic: { steps: '10' } } as never)).toThrow("config.amnesic: 'steps' must be a number");
  });

  test('--quick applies on top of the file', () => {
    const c = resolveConfig({ amnesic: { lambda: 2 } }, true, '/pkg');
    expect(c.amnesic.lambda).toBe(2);
    expect(c.amnesic.steps).toBe(12);
    expect(c.model).toBe('/pkg/models/tiny-tagger.onnx');
  });

  test('seeds.train: three seeds by default, a number or a list in a config; --quick keeps one unless the file sets it', () => {
    expect(trainSeeds(resolveConfig(undefined, false, '/pkg'))).toEqual([0, 1, 2]);
    expect(trainSeeds(resolveConfig(undefined, true, '/pkg'))).toEqual([0]);
    expect(trainSeeds(resolveConfig({ seeds: { train: 5 } }, false, '/pkg'))).toEqual([5]);
    expect(trainSeeds(resolveConfig({ seeds: { train: 5 } }, true, '/pkg'))).toEqual([5]);
    expect(trainSeeds(resolveConfig({ seeds: { train: [3, 4] } }, true, '/pkg'))).toEqual([3, 4]);
    expect(trainSeeds(resolveConfig({ seeds: { probe: 2 } }, true, '/pkg'))).toEqual([0]);
    expect(() => resolveConfig({ seeds: { train: [] } }, false, '/pkg')).toThrow("config.seeds: 'train' must be a number or a non-empty list of them");
    expect(() => resolveConfig({ seeds: { train: ['1'] } } as never, false, '/pkg')).toThrow("config.seeds: 'train' must be a number");
  });
});

describe('experiment model helpers', () => {
  test('a fresh head replaces exactly the head\'s own parameters, seeded', () => {
    const m = loadModel(INIT);
    const params = headParameters(m, 'pos');
    expect(params).toEqual(expect.arrayContaining(['pos.dense.bias', 'pos.out.bias']));
    expect(params.some((p) => p.startsWith('ner') || p.includes('encoder'))).toBe(false);
    const a = freshHead(m, 'pos', 0.02, 3);
    const b = freshHead(m, 'pos', 0.02, 3);
    const val = (model: typeof m, name: string) => tensorToFloat32((model.proto.graph?.initializer ?? []).find((t) => t.name === name)!, model.baseDir);
    for (const p of params) expect(val(a.model, p)).toEqual(val(b.model, p));
    expect(Array.from(val(a.model, 'pos.out.bias')).every((v) => v === 0)).toBe(true);
    const w = params.find((p) => val(m, p).length > 1000) as string;
    const v = val(a.model, w);
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    // Everything else is the very same TensorProto.
    const untouched = (m.proto.graph?.initializer ?? []).filter((t) => !params.includes(t.name ?? ''));
    for (const t of untouched) expect((a.model.proto.graph?.initializer ?? []).find((u) => u.name === t.name)).toBe(t);
  });

  test('withWeightsOf moves trained weights into the unpatched graph', () => {
    const m = loadModel(INIT);
    const fresh = freshHead(m, 'pos', 0.02, 1).model;
    const back = withWeightsOf(m, fresh);
    expect(back.proto.graph?.node).toBe(m.proto.graph?.node);
    const name = 'pos.dense.bias';
    expect((back.proto.graph?.initializer ?? []).find((t) => t.name === name)).toBe((fresh.proto.graph?.initializer ?? []).find((t) => t.name === name));
  });
});
