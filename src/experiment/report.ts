// Experiment, report: report.json (every number), report.html (offline, charts
// rendered to inline SVG in Node by vega + vega-lite, no script or CDN) and
// summary.md (the result in words, including how much the encoder still leaks).
import * as path from 'path';
import { writeFileAtomic } from '../onnx/io';
import type { ExperimentReport, StageResult } from './run';

export const REPORT_FILES = { json: 'report.json', html: 'report.html', summary: 'summary.md' } as const;

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const pp = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pp`;

type VlSpec = Record<string, unknown>;

/** Vega-Lite specs of the report's charts. */
export function chartSpecs(r: ExperimentReport): { title: string; spec: VlSpec }[] {
  const { adversary: adv, target: tgt } = r.model;
  const probeRows: Record<string, unknown>[] = [];
  for (const [stage, res] of [['before', r.baseline], ['after', r.after]] as [string, StageResult][]) {
    for (const [task, p] of Object.entries(res.probes)) {
      probeRows.push({ task, stage, measure: 'probe', accuracy: p.accuracy });
      probeRows.push({ task, stage, measure: 'control task', accuracy: p.control?.accuracy ?? null });
      probeRows.push({ task, stage, measure: 'majority', accuracy: p.majority.accuracy });
    }
  }
  const curves = (key: 'devAccuracy' | 'trainLoss') => [
    ...r.trainability.original[key].map((p) => ({ step: p.step, value: p.value, encoder: 'original' })),
    ...r.trainability.amnesic[key].map((p) => ({ step: p.step, value: p.value, encoder: 'amnesic' })),
  ];
  const amnesic = r.amnesic.curve.flatMap((c) => [
    { step: c.step, value: c.adversaryAccuracy, series: `${adv} (adversary) train acc` },
    { step: c.step, value: c.targetAccuracy, series: `${tgt} (target) train acc` },
    { step: c.step, value: c.lambda, series: 'λ' },
  ]);
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white' };
  const line = (values: unknown[], y: string, color: string, title: string): VlSpec => ({
    ...base, width: 420, height: 240, title, data: { values },
    mark: { type: 'line', point: values.length < 60 },
    encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative', title: y }, color: { field: color, type: 'nominal' } },
  });
  return [
    {
      title: 'Post-hoc probe accuracy (held-out) vs. majority and control',
      spec: {
        ...base, title: `Probe accuracy at ${r.model.probeTensor}`, data: { values: probeRows },
        mark: 'bar',
        encoding: {
          column: { field: 'task', type: 'nominal', title: 'probed labels' },
          x: { field: 'stage', type: 'nominal', sort: ['before', 'after'], title: null },
          xOffset: { field: 'measure', type: 'nominal' },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] } },
          color: { field: 'measure', type: 'nominal' },
          tooltip: [{ field: 'accuracy', format: '.3f' }],
        },
        width: 200, height: 240,
      },
    },
    { title: `Trainability: dev ${adv} accuracy of a fresh ${adv} head`, spec: line(curves('devAccuracy'), `dev ${adv} accuracy`, 'encoder', `Fresh ${adv} head: dev accuracy`) },
    { title: `Trainability: training loss of a fresh ${adv} head`, spec: line(curves('trainLoss'), `train loss (${adv})`, 'encoder', `Fresh ${adv} head: training loss per step`) },
    { title: 'Amnesic training', spec: line(amnesic, 'accuracy / λ', 'series', 'Amnesic training: per-step training accuracy and λ') },
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

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

function probeTable(r: ExperimentReport): string {
  const rows: string[] = [];
  for (const task of [r.model.adversary, r.model.target]) {
    for (const [stage, res] of [['before', r.baseline], ['after', r.after]] as [string, StageResult][]) {
      const p = res.probes[task];
      rows.push(`| ${task} | ${stage} | ${pct(p.accuracy)} | ${pct(p.macroF1)} | ${pct(p.nonMajorityAccuracy)} | ${pct(p.majority.accuracy)} | ${pct(p.control?.accuracy)} | ${p.selectivity === undefined ? 'n/a' : pp(p.selectivity)} |`);
    }
  }
  return ['| labels | encoder | probe acc | probe macro-F1 | probe acc (non-majority tokens) | majority | control | selectivity |', '|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

function headTable(r: ExperimentReport): string {
  const rows: string[] = [];
  for (const task of [r.model.adversary, r.model.target]) {
    const b = r.baseline.heads[task];
    const a = r.after.heads[task];
    rows.push(`| ${task} | ${pct(b.accuracy)} | ${pct(a.accuracy)} | ${pct(b.macroF1)} | ${pct(a.macroF1)} | ${pct(b.nonMajorityAccuracy)} | ${pct(a.nonMajorityAccuracy)} |`);
  }
  return ['| head | dev acc before | after | macro-F1 before | after | non-majority acc before | after |', '|---|---|---|---|---|---|---|', ...rows].join('\n');
}

/** The written summary: the numbers, and what they do and do not show. */
export function summaryMarkdown(r: ExperimentReport): string {
  const f = r.findings;
  const { adversary: adv, target: tgt } = r.model;
  const above = f.adversaryProbeBefore - f.adversaryMajority;
  let removal: string;
  if (above <= 0.02) removal = `The ${adv} probe on the original encoder was already near the majority baseline, so there was little ${adv} information to remove; the experiment says nothing about removal here.`;
  else if (f.removedFraction >= 0.8) removal = `Amnesic training removed most of the linearly decodable ${adv} information: the post-hoc probe fell from ${pct(f.adversaryProbeBefore)} to ${pct(f.adversaryProbeAfter)}, against a majority baseline of ${pct(f.adversaryMajority)}.`;
  else if (f.removedFraction >= 0.3) removal = `Amnesic training removed part of the ${adv} information: the post-hoc probe fell from ${pct(f.adversaryProbeBefore)} to ${pct(f.adversaryProbeAfter)} (majority ${pct(f.adversaryMajority)}), i.e. ${pct(f.removedFraction)} of its advantage over majority.`;
  else removal = `Amnesic training did NOT remove ${adv} information in a way a fresh probe can see: the post-hoc probe went from ${pct(f.adversaryProbeBefore)} to ${pct(f.adversaryProbeAfter)} (majority ${pct(f.adversaryMajority)}), only ${pct(f.removedFraction)} of its advantage over majority.`;
  const leak = `Leakage: the post-hoc ${adv} probe is still ${pp(f.leakage)} above the majority baseline${f.adversaryControlAfter !== undefined ? ` (control task ${pct(f.adversaryControlAfter)})` : ''}.`;
  const advHeadAfter = r.after.heads[adv].accuracy;
  const overstate = advHeadAfter < f.adversaryProbeAfter - 0.02
    ? `The adversary head's own dev accuracy after training (${pct(advHeadAfter)}) is below what a fresh probe recovers (${pct(f.adversaryProbeAfter)}): as Elazar & Goldberg (2018) warn, the adversary overstates removal.`
    : `The adversary head's own dev accuracy after training is ${pct(advHeadAfter)}.`;
  const dTgt = f.targetHeadAfter - f.targetHeadBefore;
  const dTgtNm = f.targetHeadNonMajorityAfter - f.targetHeadNonMajorityBefore;
  const target = `The ${tgt} head's dev accuracy went from ${pct(f.targetHeadBefore)} to ${pct(f.targetHeadAfter)} (${pp(dTgt)}); on non-majority tokens (for ner: entity tokens) from ${pct(f.targetHeadNonMajorityBefore)} to ${pct(f.targetHeadNonMajorityAfter)} (${pp(dTgtNm)}). `
    + (Math.abs(dTgt) <= 0.01 && dTgtNm >= -0.05 ? `That is close to its baseline.`
      : Math.abs(dTgt) <= 0.01 ? `Overall accuracy stayed close to its baseline, but the non-majority tokens dropped: part of the removal cost ${tgt}.`
        : dTgt < -0.01 ? `That is a real drop: the removal cost ${tgt} performance.` : `It improved (the extra ${tgt} training steps).`);
  const dTrain = f.trainabilityFinalAmnesic - f.trainabilityFinalOriginal;
  const trainability = `Trainability: a fresh ${adv} head fine-tuned for ${r.config.trainability.steps} steps (encoder trainable) reached ${pct(f.trainabilityFinalOriginal)} dev accuracy on the original encoder and ${pct(f.trainabilityFinalAmnesic)} on the amnesic one (${pp(dTrain)}).`;
  const caveats: string[] = [];
  if (r.model.fallback) caveats.push(`The pretrained tagger was missing; this run used the untrained init model (${r.model.path}), so the baseline encoder is random.`);
  if (r.config.amnesic.steps < 100) caveats.push(`This was a short (--quick) run: ${r.config.amnesic.steps} amnesic steps; the numbers show the pipeline works, not the effect.`);
  return [
    `# Amnesic experiment: ${adv} removed, ${tgt} kept`,
    '',
    `Model \`${r.model.path}\`, probes at \`${r.model.probeTensor}\` (${r.config.probe.kind}), ${r.amnesic.steps} amnesic steps (GRL λ ${r.config.amnesic.lambda}, schedule ${r.config.amnesic.lambdaSchedule}), seeds ${JSON.stringify(r.seeds)}. Total time ${r.timings.total} s.`,
    '',
    removal, leak, overstate, '', target, '', trainability,
    ...(caveats.length ? ['', ...caveats.map((c) => `**Caveat:** ${c}`)] : []),
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

function mdTableToHtml(md: string): string {
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
<h2>Post-hoc probes (train split → held-out test split)</h2>
${mdTableToHtml(probeTable(r))}
<h2>The heads' own dev scores</h2>
${mdTableToHtml(headTable(r))}
<h2>Charts</h2>
${charts.join('\n')}
<h2>Timings (s)</h2>
${mdTableToHtml(['| stage | seconds |', '|---|---|', ...Object.entries(r.timings).map(([k, v]) => `| ${k} | ${v} |`)].join('\n'))}
<p>Every number, the configuration and the seeds are in <code>report.json</code>.</p>
</body></html>
`;
}

/** Write report.json, report.html and summary.md into `dir`; returns their paths. */
export async function writeReport(r: ExperimentReport, dir: string): Promise<{ json: string; html: string; summary: string }> {
  const at = (f: string) => path.join(dir, f);
  const html = await reportHtml(r);
  writeFileAtomic(at(REPORT_FILES.json), `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`);
  writeFileAtomic(at(REPORT_FILES.html), html);
  writeFileAtomic(at(REPORT_FILES.summary), summaryMarkdown(r));
  return { json: at(REPORT_FILES.json), html: at(REPORT_FILES.html), summary: at(REPORT_FILES.summary) };
}
