// Experiment (erasure), report: the removal methods side by side in
// report.json (every number), summary.md (the table and what it does and does
// not show) and report.html (offline, inline SVG charts: probe vs. majority
// and control per method, MLM accuracy per method, trainability curves).
import { esc, htmlFooter, mdTableToHtml, renderSvg, spreadText, writeReportFiles } from '../report';
import type { Spread } from '../run';
import type { ErasureReport, MethodSummary } from './run';

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const pp = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pp` : 'n/a');

export const METHOD_NAMES: Record<string, string> = {
  original: 'original (no removal)', grl: 'GRL (amnesic training, MLM kept)', inlp: 'INLP', leace: 'LEACE', random: 'random directions (INLP rank)', 'random-leace': 'random directions (LEACE rank)',
};

const sp = (s: Spread, n: number, fmt: (x: number) => string = pct) => spreadText(s, n, fmt);

/** The side-by-side table: one row per method, the baseline first. */
export function methodTable(r: ErasureReport): string {
  const b = r.baseline;
  const { concept: c, target: t } = r.model;
  const rows = [
    `| ${METHOD_NAMES.original} | – | ${pct(b.probe.accuracy)} | ${pp(b.probe.accuracy - b.probe.majority.accuracy)} | ${pct(b.probe.control?.accuracy)} | ${pp(b.probe.selectivity ?? NaN)} | ${pct(b.mlm.accuracy)} | ${b.trainability.finalDevLoss.toFixed(4)} | ${pct(b.trainability.finalDevAccuracy)} | ${pct(b.trainability.finalNonMajority)} |`,
    ...r.summary.map((m: MethodSummary) => {
      const n = m.seeds.length;
      return `| ${METHOD_NAMES[m.method]} | ${m.rank ? sp(m.rank, n, (x) => x.toFixed(0)) : '–'} | ${sp(m.probe, n)} | ${sp(m.leakage, n, pp)} | ${sp(m.control, n)} | ${sp(m.selectivity, n, pp)} | ${sp(m.mlmAccuracy, n)} | ${sp(m.targetDevLoss, n, (x) => x.toFixed(4))} | ${sp(m.targetFinal, n)} | ${sp(m.targetNonMajorityFinal, n)} |`;
    }),
  ];
  return [
    `| encoder | rank removed | ${c} probe | leakage over majority (${pct(b.probe.majority.accuracy)}) | control task | selectivity | MLM accuracy (masked dev tokens) | fresh ${t} head, dev loss | dev acc | ${t} non-majority tokens |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** Per seed: every run's headline numbers. */
export function runTable(r: ErasureReport): string {
  const rows = r.runs.map((x) => `| ${x.method} | ${x.seed} | ${x.rank ?? '–'} | ${pct(x.after.probe.accuracy)} | ${pct(x.after.probe.control?.accuracy)} | ${pct(x.after.mlm.accuracy)} | ${x.after.trainability.finalDevLoss.toFixed(4)} | ${pct(x.after.trainability.finalDevAccuracy)} | ${pct(x.after.trainability.finalNonMajority)} | ${x.removalSeconds} |`);
  return ['| method | seed | rank | probe | control | MLM acc | target dev loss | target dev acc | target non-majority | removal s |', '|---|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

/** What the numbers say, drawn only from what was measured. */
export function findingsText(r: ErasureReport): string[] {
  const b = r.baseline;
  const { concept: c, target: t } = r.model;
  const maj = b.probe.majority.accuracy;
  const out: string[] = [];
  const above = b.probe.accuracy - maj;
  out.push(`On the original encoder a fresh linear ${c} probe reaches ${pct(b.probe.accuracy)} on held-out sentences (majority ${pct(maj)}, control task ${pct(b.probe.control?.accuracy)}, selectivity ${pp(b.probe.selectivity ?? NaN)})${above > 0.2 ? `: ${c} is linearly decodable from an encoder trained only with MLM.` : '.'} MLM accuracy on masked dev tokens is ${pct(b.mlm.accuracy)}.`);
  for (const m of r.summary) {
    const n = m.seeds.length;
    const dm = m.mlmAccuracy.mean - b.mlm.accuracy;
    const dt = m.targetFinal.mean - b.trainability.finalDevAccuracy;
    const dtn = m.targetNonMajorityFinal.mean - b.trainability.finalNonMajority;
    const f = m.removedFraction.mean;
    const removal = f < 0
      ? `did not remove ${c}: a fresh probe decodes more of it than before (${pct(b.probe.accuracy)} → ${sp(m.probe, n)})`
      : `${f >= 0.9 ? 'removed nearly all' : f >= 0.5 ? 'removed most' : f >= 0.2 ? 'removed part' : 'removed little'} of the probe's advantage over majority (${sp(m.removedFraction, n)}): probe ${sp(m.probe, n)}`;
    out.push(`**${METHOD_NAMES[m.method]}**${m.rank ? ` (rank ${sp(m.rank, n, (x) => x.toFixed(0))})` : ''} ${removal}, leakage ${sp(m.leakage, n, pp)}. MLM accuracy ${pct(m.mlmAccuracy.mean)} (${pp(dm)} against the original). A fresh ${t} head ends at dev loss ${m.targetDevLoss.mean.toFixed(4)} (original ${b.trainability.finalDevLoss.toFixed(4)}), ${pct(m.targetFinal.mean)} dev accuracy (${pp(dt)}), ${pct(m.targetNonMajorityFinal.mean)} on non-majority tokens (${pp(dtn)}).`);
  }
  for (const [control, of] of [['random', 'inlp'], ['random-leace', 'leace']] as const) {
    const m = r.summary.find((x) => x.method === of);
    const rnd = r.summary.find((x) => x.method === control);
    if (!m || !rnd) continue;
    const gap = rnd.mlmAccuracy.mean - m.mlmAccuracy.mean;
    // Binomial standard error of the difference of two accuracies over the same masked tokens.
    const n = r.baseline.mlm.rows;
    const se = Math.sqrt((m.mlmAccuracy.mean * (1 - m.mlmAccuracy.mean) + rnd.mlmAccuracy.mean * (1 - rnd.mlmAccuracy.mean)) / n);
    const noise = `${n} masked tokens, sampling error of the difference ±${(2 * se * 100).toFixed(1)} pp at 2 standard errors`;
    const same = m.rank && rnd.rank && r.model.dim !== undefined && m.rank.min === r.model.dim;
    out.push(`Control for ${METHOD_NAMES[of]}: removing its ${c} directions ${same ? `(all ${r.model.dim} of them, like the random control) costs the same MLM accuracy as any other rank-${r.model.dim} projection; this pair says nothing ${c}-specific` : gap > 2 * se ? `costs the language model ${pp(gap).replace('+', '')} more MLM accuracy than removing as many random directions (${noise}), so the LM used that ${c} information` : gap < -2 * se ? `costs the language model less than removing as many random directions (${pp(gap)}; ${noise}), so its cost is not specific to ${c}` : `changes MLM accuracy by ${pp(-gap)} relative to removing as many random directions, within sampling error (${noise}): this run cannot tell a ${c}-specific cost of that size from noise`}.`);
  }
  const inlpRuns = r.runs.filter((x) => x.method === 'inlp');
  const dim = r.model.dim;
  if (inlpRuns.length && dim) {
    const full = inlpRuns.filter((x) => x.rank === dim).length;
    const trace = inlpRuns.map((x) => `seed ${x.seed}: ${(x.iterations ?? []).map((a) => pct(a)).join(' → ')}`).join('; ');
    out.push(`INLP's classifiers, held-out accuracy per iteration (${trace}).${full ? ` In ${full} of ${inlpRuns.length} runs INLP removed all ${dim} directions before a classifier fell to majority: the ${c} information is spread over the whole space, the eraser is the zero map, and its random control of the same rank is the same map, so those runs cannot separate ${c}-specific damage from generic damage; LEACE, which equalises the class means with rank ${r.summary.find((m) => m.method === 'leace')?.rank?.mean ?? 'classes − 1'}, and its own random control, are the informative comparison there.` : ''}`);
  }
  const grl = r.summary.find((m) => m.method === 'grl');
  if (grl) {
    const tail = (xs: number[]) => xs.slice(-Math.max(1, Math.floor(xs.length / 10)));
    const adv = r.runs.filter((x) => x.method === 'grl').map((x) => tail((x.curve ?? []).map((p) => p.conceptAccuracy)).reduce((a, b, _, all) => a + b / all.length, 0));
    const advMean = adv.reduce((a, b) => a + b, 0) / adv.length;
    out.push(`GRL changes the encoder by training, while the projections remove only what a linear map finds. The GRL adversary's own training accuracy over its last steps was ${pct(advMean)}${advMean < grl.probe.mean - 0.02 ? `, below what a fresh probe recovers afterwards (${pct(grl.probe.mean)}): the adversary overstates removal (Elazar & Goldberg, 2018)` : ''}.`);
  }
  if (r.config.grl.steps < 50) out.push(`**Caveat:** a short (--quick) run (${r.config.grl.steps} GRL steps, ${r.config.trainability.steps} trainability steps): the numbers show the pipeline works, not the effect.`);
  if (r.config.seeds.train.length === 1) out.push(`**Caveat:** one seed; removal varies between seeds, so treat these as one sample.`);
  else out.push(`LEACE is closed-form and was fit once; every other method ran with ${r.config.seeds.train.length} seeds (${r.config.seeds.train.join(', ')}), shown as mean (min–max).`);
  return out;
}

type VlSpec = Record<string, unknown>;
const MEASURES = ['probe', 'control task', 'majority'];

export function erasureCharts(r: ErasureReport): { title: string; spec: VlSpec }[] {
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white' };
  const order = ['original', ...r.summary.map((m) => m.method)];
  const probeRows: Record<string, unknown>[] = [];
  const add = (method: string, seed: string, p: ErasureReport['baseline']['probe']) => {
    probeRows.push({ method, seed, measure: 'probe', accuracy: p.accuracy });
    probeRows.push({ method, seed, measure: 'control task', accuracy: p.control?.accuracy ?? null });
    probeRows.push({ method, seed, measure: 'majority', accuracy: p.majority.accuracy });
  };
  add('original', '-', r.baseline.probe);
  for (const x of r.runs) add(x.method, String(x.seed), x.after.probe);
  const mlmRows = [{ method: 'original', seed: '-', accuracy: r.baseline.mlm.accuracy }, ...r.runs.map((x) => ({ method: x.method, seed: String(x.seed), accuracy: x.after.mlm.accuracy }))];
  const curveRows = [
    ...r.baseline.trainability.devLoss.map((p) => ({ method: 'original', seed: '-', step: p.step, value: p.value })),
    ...r.runs.flatMap((x) => x.after.trainability.devLoss.map((p) => ({ method: x.method, seed: String(x.seed), step: p.step, value: p.value }))),
  ];
  const bars = (values: unknown[], y: string, title: string, measure?: boolean): VlSpec => ({
    ...base, width: 460, height: 260, title, data: { values },
    encoding: { x: { field: 'method', type: 'nominal', sort: order, title: null }, ...(measure ? { xOffset: { field: 'measure', type: 'nominal', sort: MEASURES } } : {}) },
    layer: [
      { mark: 'bar', encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: y }, color: { field: measure ? 'measure' : 'method', type: 'nominal', sort: measure ? MEASURES : order } } },
      { mark: { type: 'point', filled: true, color: 'black', size: 22, opacity: 0.8 }, encoding: { y: { field: 'accuracy', type: 'quantitative' }, tooltip: [{ field: 'seed' }, { field: 'accuracy', format: '.3f' }] } },
    ],
  });
  return [
    { title: `Post-hoc ${r.model.concept} probe (held-out) vs. majority and control, per method; bars are the mean over seeds, points each seed`, spec: bars(probeRows, 'accuracy', `${r.model.concept} probe at ${r.model.tensor}`, true) },
    { title: 'MLM accuracy on masked dev tokens, per method (the amnesic-probing measure: how much the LM needed the removed information)', spec: bars(mlmRows, 'MLM accuracy', 'MLM accuracy after removal') },
    {
      title: `Trainability: dev loss of a fresh ${r.model.target} head fine-tuned on each encoder (mean over seeds; the loss shows learning before the accuracy, which the majority class dominates)`,
      spec: {
        ...base, width: 460, height: 260, title: `Fresh ${r.model.target} head: dev loss`, data: { values: curveRows },
        mark: { type: 'line', point: true },
        encoding: { x: { field: 'step', type: 'quantitative' }, y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: `dev ${r.model.target} loss`, scale: { type: 'log' } }, color: { field: 'method', type: 'nominal', sort: order } },
      },
    },
  ];
}

export function erasureSummaryMarkdown(r: ErasureReport): string {
  return [
    `# Concept erasure: ${r.model.concept} removed from a pretrained encoder, ${r.model.target} trained after`,
    '',
    `Model \`${r.model.path}\`, information removed and probed at \`${r.model.tensor}\`; MLM head \`${r.model.mlmHead}\`. Seeds ${JSON.stringify(r.config.seeds)}. Total time ${r.timings.total} s.`,
    '',
    ...findingsText(r).flatMap((l) => [l, '']),
    '## Methods side by side',
    '',
    methodTable(r),
    '',
    '## Every run',
    '',
    runTable(r),
    '',
  ].join('\n');
}

export async function erasureReportHtml(r: ErasureReport): Promise<string> {
  const charts = await Promise.all(erasureCharts(r).map(async (c) => `<figure><figcaption>${esc(c.title)}</figcaption>${await renderSvg(c.spec)}</figure>`));
  const paras = findingsText(r).map((l) => `<p>${esc(l).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')}</p>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>grl-onnx erasure experiment</title>
<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}figure{display:inline-block;margin:1em}figcaption{font-weight:600;margin-bottom:.5em;max-width:520px}code{background:#f4f4f4;padding:0 3px}</style>
</head><body>
<h1>Concept erasure: ${esc(r.model.concept)} removed from a pretrained encoder</h1>
<p>Model <code>${esc(r.model.path)}</code>, removed and probed at <code>${esc(r.model.tensor)}</code>.</p>
${paras.join('\n')}
<h2>Methods side by side</h2>
${mdTableToHtml(methodTable(r))}
<h2>Every run</h2>
${mdTableToHtml(runTable(r))}
<h2>Charts</h2>
${charts.join('\n')}
${htmlFooter(r.timings)}`;
}

export async function writeErasureReport(r: ErasureReport, dir: string): Promise<{ json: string; html: string; summary: string }> {
  return writeReportFiles(dir, r, await erasureReportHtml(r), erasureSummaryMarkdown(r));
}
