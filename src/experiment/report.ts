// Experiment, report: report.json (every number), report.html (offline, charts
// rendered to inline SVG in Node by vega + vega-lite, no script or CDN) and
// summary.md (the result in words, including how much the encoder still leaks).
// Amnesic training runs once per training seed; every after-number is reported per
// seed and as mean with min–max, since one seed alone can be badly misleading.
import * as path from 'path';
import { writeFileAtomic } from '../onnx/io';
import type { ExperimentReport, Spread, StageResult } from './run';
import type { ProbeReport, ProbeScores } from '../probe/probe';

export const REPORT_FILES = { json: 'report.json', html: 'report.html', summary: 'summary.md' } as const;

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const pp = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pp`;

/** "39.8% mean over 3 seeds (22.4%–49.9%)", or just "47.2%" with one seed. */
export function spreadText(s: Spread, seeds: number, fmt: (x: number) => string = pct): string {
  return seeds > 1 ? `${fmt(s.mean)} mean over ${seeds} seeds (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.mean);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

type VlSpec = Record<string, unknown>;

/** Vega-Lite specs of the report's charts. */
export function chartSpecs(r: ExperimentReport): { title: string; spec: VlSpec }[] {
  const { adversary: adv, target: tgt } = r.model;
  const multi = r.perSeed.length > 1;
  const probeRows: Record<string, unknown>[] = [];
  const addProbeRows = (stage: string, seed: string, probes: Record<string, ProbeReport>) => {
    for (const [task, p] of Object.entries(probes)) {
      probeRows.push({ task, stage, seed, measure: 'probe', accuracy: p.accuracy });
      probeRows.push({ task, stage, seed, measure: 'control task', accuracy: p.control?.accuracy ?? null });
      probeRows.push({ task, stage, seed, measure: 'majority', accuracy: p.majority.accuracy });
    }
  };
  addProbeRows('before', 'none', r.baseline.probes);
  for (const s of r.perSeed) addProbeRows('after', String(s.seed), s.after.probes);
  const amnesicLabel = `amnesic (seed ${r.trainability.seed})`;
  const curves = (key: 'devAccuracy' | 'trainLoss') => [
    ...r.trainability.original[key].map((p) => ({ step: p.step, value: p.value, encoder: 'original' })),
    ...r.trainability.amnesic[key].map((p) => ({ step: p.step, value: p.value, encoder: amnesicLabel })),
  ];
  const amnesic = r.perSeed.flatMap((s) => s.amnesic.curve.flatMap((c) => [
    { step: c.step, value: c.adversaryAccuracy, series: `${adv} (adversary) train acc`, seed: `seed ${s.seed}` },
    { step: c.step, value: c.targetAccuracy, series: `${tgt} (target) train acc`, seed: `seed ${s.seed}` },
    { step: c.step, value: c.lambda, series: 'λ', seed: `seed ${s.seed}` },
  ]));
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white' };
  const line = (values: unknown[], y: string, color: string, title: string, dash?: string): VlSpec => ({
    ...base, width: 420, height: 240, title, data: { values },
    mark: { type: 'line', point: values.length < 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative', title: y }, color: { field: color, type: 'nominal' },
      ...(dash ? { strokeDash: { field: dash, type: 'nominal' } } : {}),
    },
  });
  return [
    {
      title: multi
        ? `Post-hoc probe accuracy (held-out) vs. majority and control; after-bars are the mean over ${r.perSeed.length} training seeds, black points each seed`
        : 'Post-hoc probe accuracy (held-out) vs. majority and control',
      spec: {
        ...base, title: `Probe accuracy at ${r.model.probeTensor}`, data: { values: probeRows },
        facet: { column: { field: 'task', type: 'nominal', title: 'probed labels' } },
        spec: {
          width: 200, height: 240,
          encoding: {
            x: { field: 'stage', type: 'nominal', sort: ['before', 'after'], title: null },
            xOffset: { field: 'measure', type: 'nominal' },
          },
          layer: [
            {
              mark: 'bar',
              encoding: {
                y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: multi ? 'accuracy (after: mean over seeds)' : 'accuracy' },
                color: { field: 'measure', type: 'nominal' },
                tooltip: [{ aggregate: 'mean', field: 'accuracy', format: '.3f', title: 'accuracy' }],
              },
            },
            {
              transform: [{ filter: "datum.stage === 'after'" }],
              mark: { type: 'point', filled: true, color: 'black', size: 25, opacity: 0.85 },
              encoding: {
                y: { field: 'accuracy', type: 'quantitative' },
                tooltip: [{ field: 'seed', title: 'training seed' }, { field: 'measure' }, { field: 'accuracy', format: '.3f' }],
              },
            },
          ],
        },
      },
    },
    { title: `Trainability: dev ${adv} accuracy of a fresh ${adv} head (original encoder vs. the first seed's amnesic encoder)`, spec: line(curves('devAccuracy'), `dev ${adv} accuracy`, 'encoder', `Fresh ${adv} head: dev accuracy`) },
    { title: `Trainability: training loss of a fresh ${adv} head (original encoder vs. the first seed's amnesic encoder)`, spec: line(curves('trainLoss'), `train loss (${adv})`, 'encoder', `Fresh ${adv} head: training loss per step`) },
    { title: multi ? 'Amnesic training (one dash style per seed)' : 'Amnesic training', spec: line(amnesic, 'accuracy / λ', 'series', 'Amnesic training: per-step training accuracy and λ', multi ? 'seed' : undefined) },
  ];
}

/** Render a Vega-Lite spec to an SVG string in Node (no browser, no canvas). */
export async function renderSvg(spec: VlSpec): Promise<string> {
  // Loaded lazily: vega is large and only the report needs it.
  const vega = require('vega') as typeof import('vega');
  const vl = require('vega-lite') as typeof import('vega-lite');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** Rows "before", "after (seed k)" per seed and, with several seeds, "after (mean)". */
function stageRows<T>(r: ExperimentReport, pick: (res: StageResult) => T, cells: (x: T) => number[]): { encoder: string; values: number[] }[] {
  const rows = [{ encoder: 'before', values: cells(pick(r.baseline)) }];
  const after = r.perSeed.map((s) => ({ encoder: `after (seed ${s.seed})`, values: cells(pick(s.after)) }));
  rows.push(...after);
  if (after.length > 1) rows.push({ encoder: `after (mean of ${after.length})`, values: after[0].values.map((_, i) => mean(after.map((a) => a.values[i]))) });
  return rows;
}

function probeTable(r: ExperimentReport): string {
  const rows: string[] = [];
  const cells = (p: ProbeReport) => [p.accuracy, p.macroF1, p.nonMajorityAccuracy, p.majority.accuracy, p.control?.accuracy ?? NaN, p.selectivity ?? NaN];
  for (const task of [r.model.adversary, r.model.target]) {
    for (const row of stageRows(r, (res) => res.probes[task], cells)) {
      const v = row.values;
      rows.push(`| ${task} | ${row.encoder} | ${pct(v[0])} | ${pct(v[1])} | ${pct(v[2])} | ${pct(v[3])} | ${pct(v[4])} | ${Number.isFinite(v[5]) ? pp(v[5]) : 'n/a'} |`);
    }
  }
  return ['| labels | encoder | probe acc | probe macro-F1 | probe acc (non-majority tokens) | majority | control | selectivity |', '|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

function headTable(r: ExperimentReport): string {
  const rows: string[] = [];
  const cells = (h: ProbeScores) => [h.accuracy, h.macroF1, h.nonMajorityAccuracy];
  for (const task of [r.model.adversary, r.model.target]) {
    for (const row of stageRows(r, (res) => res.heads[task], cells)) rows.push(`| ${task} | ${row.encoder} | ${row.values.map(pct).join(' | ')} |`);
  }
  return ['| head | encoder | dev acc | macro-F1 | non-majority acc |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** The headline numbers after amnesic training: one row per seed, then mean, min and max. */
function seedTable(r: ExperimentReport): string {
  const { adversary: adv, target: tgt } = r.model;
  const keys = ['adversaryProbeAfter', 'leakage', 'adversaryControlAfter', 'adversarySelectivityAfter', 'targetHeadAfter', 'targetHeadNonMajorityAfter'] as const;
  const fmt = (k: (typeof keys)[number], x: number) => (k === 'leakage' || k === 'adversarySelectivityAfter' ? (Number.isFinite(x) ? pp(x) : 'n/a') : pct(x));
  const rows = r.perSeed.map((s) => `| ${s.seed} | ${keys.map((k) => fmt(k, s.findings[k])).join(' | ')} |`);
  for (const stat of ['mean', 'min', 'max'] as const) rows.push(`| ${stat} | ${keys.map((k) => fmt(k, r.findings.after[k][stat])).join(' | ')} |`);
  return [
    `| training seed | ${adv} probe acc | leakage over majority | ${adv} control acc | ${adv} selectivity | ${tgt} head dev acc | ${tgt} non-majority (entity-token) acc |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** The written summary: the numbers, and what they do and do not show. */
export function summaryMarkdown(r: ExperimentReport): string {
  const f = r.findings;
  const a = f.after;
  const n = r.perSeed.length;
  const { adversary: adv, target: tgt } = r.model;
  const seedOf = (key: keyof typeof a, stat: 'min' | 'max') => r.perSeed.find((s) => s.findings[key] === a[key][stat])?.seed;
  const above = f.adversaryProbeBefore - f.adversaryMajority;
  const probeAfter = spreadText(a.adversaryProbeAfter, n);
  const removed = spreadText(a.removedFraction, n);
  let removal: string;
  if (above <= 0.02) removal = `The ${adv} probe on the original encoder was already near the majority baseline, so there was little ${adv} information to remove; the experiment says nothing about removal here.`;
  else if (a.removedFraction.mean >= 0.8) removal = `Amnesic training removed most of the linearly decodable ${adv} information: the post-hoc probe fell from ${pct(f.adversaryProbeBefore)} to ${probeAfter}, against a majority baseline of ${pct(f.adversaryMajority)}.`;
  else if (a.removedFraction.mean >= 0.3) removal = `Amnesic training removed part of the ${adv} information: the post-hoc probe fell from ${pct(f.adversaryProbeBefore)} to ${probeAfter} (majority ${pct(f.adversaryMajority)}), i.e. ${removed} of its advantage over majority.`;
  else removal = `Amnesic training did NOT remove ${adv} information in a way a fresh probe can see: the post-hoc probe went from ${pct(f.adversaryProbeBefore)} to ${probeAfter} (majority ${pct(f.adversaryMajority)}), only ${removed} of its advantage over majority.`;
  const width = a.adversaryProbeAfter.max - a.adversaryProbeAfter.min;
  const seedNote = n > 1
    ? (width > 0.05
      ? `The outcome depends strongly on the training seed: the post-hoc ${adv} probe after training ranges from ${pct(a.adversaryProbeAfter.min)} (seed ${seedOf('adversaryProbeAfter', 'min')}) to ${pct(a.adversaryProbeAfter.max)} (seed ${seedOf('adversaryProbeAfter', 'max')}), so no single seed describes the result.`
      : `The ${n} training seeds agree to within ${pp(width).replace('+', '')}.`)
    : `This is a single training seed (${f.trainSeeds[0]}); removal varies between seeds, so treat the numbers as one sample.`;
  const ctrl = Number.isFinite(a.adversaryControlAfter.mean) ? ` (control task ${spreadText(a.adversaryControlAfter, n)}; selectivity ${spreadText(a.adversarySelectivityAfter, n, pp)})` : '';
  const leak = n > 1
    ? `Leakage: the post-hoc ${adv} probe is still ${pp(a.leakage.mean)} above the majority baseline on average over ${n} seeds (range ${pp(a.leakage.min)} to ${pp(a.leakage.max)})${ctrl}.`
    : `Leakage: the post-hoc ${adv} probe is still ${pp(a.leakage.mean)} above the majority baseline${ctrl}.`;
  const overstate = a.adversaryHeadAfter.mean < a.adversaryProbeAfter.mean - 0.02
    ? `The adversary head's own dev accuracy after training (${spreadText(a.adversaryHeadAfter, n)}) is below what a fresh probe recovers (${probeAfter}): as Elazar & Goldberg (2018) warn, the adversary overstates removal.`
    : `The adversary head's own dev accuracy after training is ${spreadText(a.adversaryHeadAfter, n)}.`;
  const dTgt = a.targetHeadAfter.mean - f.targetHeadBefore;
  const dTgtNm = a.targetHeadNonMajorityAfter.mean - f.targetHeadNonMajorityBefore;
  const target = `The ${tgt} head's dev accuracy went from ${pct(f.targetHeadBefore)} to ${spreadText(a.targetHeadAfter, n)} (${pp(dTgt)}${n > 1 ? ' for the mean' : ''}); on non-majority tokens (for ner: entity tokens) from ${pct(f.targetHeadNonMajorityBefore)} to ${spreadText(a.targetHeadNonMajorityAfter, n)} (${pp(dTgtNm)}). `
    + (Math.abs(dTgt) <= 0.01 && dTgtNm >= -0.05 ? `That is close to its baseline.`
      : Math.abs(dTgt) <= 0.01 ? `Overall accuracy stayed close to its baseline, but the non-majority tokens dropped: part of the removal cost ${tgt}.`
        : dTgt < -0.01 ? `That is a real drop: the removal cost ${tgt} performance.` : `It improved (the extra ${tgt} training steps).`);
  const dTrain = f.trainabilityFinalAmnesic - f.trainabilityFinalOriginal;
  const trainability = `Trainability: a fresh ${adv} head fine-tuned for ${r.config.trainability.steps} steps (encoder trainable) reached ${pct(f.trainabilityFinalOriginal)} dev accuracy on the original encoder and ${pct(f.trainabilityFinalAmnesic)} on the amnesic one (${pp(dTrain)}). `
    + (n > 1 ? `This was measured on the amnesic encoder of the first training seed (${f.trainabilitySeed}) only, not on every seed's.` : `Measured on the amnesic encoder of training seed ${f.trainabilitySeed}.`);
  const caveats: string[] = [];
  if (r.model.fallback) caveats.push(`The pretrained tagger was missing; this run used the untrained init model (${r.model.path}), so the baseline encoder is random.`);
  if (r.config.amnesic.steps < 100) caveats.push(`This was a short (--quick) run: ${r.config.amnesic.steps} amnesic steps; the numbers show the pipeline works, not the effect.`);
  return [
    `# Amnesic experiment: ${adv} removed, ${tgt} kept`,
    '',
    `Model \`${r.model.path}\`, probes at \`${r.model.probeTensor}\` (${r.config.probe.kind}), ${r.config.amnesic.steps} amnesic steps (GRL λ ${r.config.amnesic.lambda}, schedule ${r.config.amnesic.lambdaSchedule}) per training seed, training seeds ${f.trainSeeds.join(', ')}, seeds ${JSON.stringify(r.seeds)}. Total time ${r.timings.total} s.`,
    '',
    removal, seedNote, leak, overstate, '', target, '', trainability,
    ...(caveats.length ? ['', ...caveats.map((c) => `**Caveat:** ${c}`)] : []),
    '',
    '## After amnesic training, per training seed',
    '',
    seedTable(r),
    '',
    '## Post-hoc probes (train split → held-out test split)',
    '',
    probeTable(r),
    '',
    '## The heads\' own dev scores',
    '',
    headTable(r),
    '',
  ].join('\n');
}

export function mdTableToHtml(md: string): string {
  const lines = md.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string) => l.slice(1, -1).split('|').map((c) => esc(c.trim()));
  const [head, , ...body] = lines;
  return `<table><thead><tr>${cells(head).map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody>${body.map((l) => `<tr>${cells(l).map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export async function reportHtml(r: ExperimentReport): Promise<string> {
  const charts = await Promise.all(chartSpecs(r).map(async (c) => `<figure><figcaption>${esc(c.title)}</figcaption>${await renderSvg(c.spec)}</figure>`));
  const summary = summaryMarkdown(r);
  const paragraphs = summary.split('\n## ')[0].split('\n').slice(1).filter((l) => l.trim()).map((l) => `<p>${esc(l).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')}</p>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>grl-onnx amnesic experiment</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}figure{display:inline-block;margin:1em}figcaption{font-weight:600;margin-bottom:.5em}code{background:#f4f4f4;padding:0 3px}</style>
</head><body>
<h1>Amnesic experiment: ${esc(r.model.adversary)} removed, ${esc(r.model.target)} kept</h1>
${paragraphs.join('\n')}
<h2>After amnesic training, per training seed</h2>
${mdTableToHtml(seedTable(r))}
<h2>Post-hoc probes (train split → held-out test split)</h2>
${mdTableToHtml(probeTable(r))}
<h2>The heads' own dev scores</h2>
${mdTableToHtml(headTable(r))}
<h2>Charts</h2>
${charts.join('\n')}
${htmlFooter(r.timings)}`;
}

/** The timings table and the closing lines every report page ends with. */
export function htmlFooter(timings: Record<string, number>): string {
  return `<h2>Timings (s)</h2>
${mdTableToHtml(['| stage | seconds |', '|---|---|', ...Object.entries(timings).map(([k, v]) => `| ${k} | ${v} |`)].join('\n'))}
<p>Every number, the configuration and the seeds are in <code>report.json</code>.</p>
</body></html>
`;
}

/** Write report.json (NaN as null), report.html and summary.md into `dir`, atomically; returns their paths. */
export function writeReportFiles(dir: string, report: unknown, html: string, summary: string): { json: string; html: string; summary: string } {
  const at = (f: string) => path.join(dir, f);
  writeFileAtomic(at(REPORT_FILES.json), `${JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`);
  writeFileAtomic(at(REPORT_FILES.html), html);
  writeFileAtomic(at(REPORT_FILES.summary), summary);
  return { json: at(REPORT_FILES.json), html: at(REPORT_FILES.html), summary: at(REPORT_FILES.summary) };
}

/** Write report.json, report.html and summary.md into `dir`; returns their paths. */
export async function writeReport(r: ExperimentReport, dir: string): Promise<{ json: string; html: string; summary: string }> {
  return writeReportFiles(dir, r, await reportHtml(r), summaryMarkdown(r));
}
