// CLI command `grl-onnx experiment`: by default the erasure experiment on the
// shipped pretrained encoder (GRL, INLP, LEACE and random directions side by
// side); a config file with "kind": "tagger" (configs/tagger.json) runs the
// first, tagger-based amnesic experiment. Progress goes to stderr (a line per
// stage, a bar on a TTY); the report goes to DIR; --json prints the findings.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { GrlCommand, CliIO, warn } from '../command';
import { CorpusArgs, corpusFromArgs, withCorpusOptions } from '../corpus';
import type { ExperimentHooks } from '../../experiment/run';
import type { RunFolder } from '../../train/run-folder';

interface ExperimentArgs extends CorpusArgs {
  config?: string;
  out: string;
  quick?: boolean;
  threads?: number;
  json?: boolean;
  truncate?: boolean;
  overwrite?: boolean;
}

/** The report folder: refused when it holds a report (unless --overwrite), locked while written. */
async function reportFolder(args: ExperimentArgs): Promise<RunFolder> {
  const { RunFolder } = await import('../../train/run-folder');
  const { REPORT_FILES } = await import('../../experiment/report');
  return new RunFolder(args.out, { markers: [REPORT_FILES.json, REPORT_FILES.summary, 'runs'], files: [...Object.values(REPORT_FILES), 'runs'], overwrite: args.overwrite, command: 'grl-onnx experiment' });
}

/** Run `work` with the folder claimed just before the first write, and released after. */
async function inFolder<T>(folder: RunFolder, io: CliIO, hooks: ExperimentHooks, work: (hooks: ExperimentHooks) => Promise<T>): Promise<T> {
  const claimed: ExperimentHooks = {
    ...hooks,
    beforeWrite: () => {
      folder.claim();
      for (const n of folder.notes) warn(io, n);
    },
  };
  try {
    return await work(claimed);
  } finally {
    folder.release();
  }
}

/**
 * An experiment in its report folder: progress on stderr, the folder claimed before the first
 * write and released after, the report written once the run is done.
 */
async function runReported<R, F>(args: ExperimentArgs, io: CliIO, run: (h: ExperimentHooks) => Promise<R>, write: (r: R) => Promise<F>): Promise<{ report: R; files: F }> {
  const folder = await reportFolder(args);
  const { hooks, stop } = progressHooks(io);
  return inFolder(folder, io, hooks, async (h) => {
    const report = await run(h);
    stop();
    return { report, files: await write(report) };
  });
}

/** Stage lines, warnings, and a progress bar on a TTY (a line every 10% otherwise). */
function progressHooks(io: CliIO): { hooks: ExperimentHooks; stop: () => void } {
  const tty = !!(process.stderr as { isTTY?: boolean }).isTTY && io.stderr === process.stderr;
  let bar: import('cli-progress').SingleBar | undefined;
  let barStage = '';
  let lastLine = -1;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    barStage = '';
  };
  const hooks: ExperimentHooks = {
    onStage: (stage, message) => {
      stop();
      io.stderr.write(`[${stage}] ${message}\n`);
    },
    onWarning: (m) => warn(io, m),
    onProgress: (stage, done, total, info) => {
      if (tty) {
        if (barStage !== stage) {
          stop();
          const { SingleBar, Presets } = require('cli-progress') as typeof import('cli-progress');
          bar = new SingleBar({ format: `${stage} {value}/{total} [{bar}] eta {eta_formatted} | {info}`, hideCursor: true, stream: process.stderr }, Presets.shades_classic);
          bar.start(total, 0, { info });
          barStage = stage;
        }
        bar?.update(done, { info });
        if (done === total) stop();
        return;
      }
      const tenth = Math.floor((done * 10) / total);
      if (done === total || tenth !== lastLine) {
        lastLine = tenth;
        io.stderr.write(`[${stage}] step ${done}/${total} ${info}\n`);
      }
    },
  };
  return { hooks, stop };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
const pp = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} pp` : 'n/a');

async function runTagger(args: ExperimentArgs, io: CliIO, file: Record<string, unknown> | undefined): Promise<void> {
  const { resolveConfig } = await import('../../experiment/config');
  const { runExperiment } = await import('../../experiment/run');
  const { writeReport, spreadText } = await import('../../experiment/report');
  const { withoutKind } = await import('../../experiment/kind');
  const cfg = resolveConfig(file ? withoutKind(file) : undefined, !!args.quick);
  if (args.threads) cfg.threads = args.threads;
  if (args.truncate) cfg.truncate = true;
  const corpus = corpusFromArgs(args, io);
  if (corpus) cfg.corpus = corpus;
  const { report, files } = await runReported(args, io, (h) => runExperiment(cfg, args.out, h), (r) => writeReport(r, args.out));
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ kind: 'tagger', findings: report.findings, timings: report.timings, files }, null, 1)}\n`);
    return;
  }
  const f = report.findings;
  const a = f.after;
  const n = report.perSeed.length;
  const { adversary: adv, target: tgt } = report.model;
  io.stdout.write(`${adv} probe: ${pct(f.adversaryProbeBefore)} → ${spreadText(a.adversaryProbeAfter, n, pct)} (majority ${pct(f.adversaryMajority)}, leakage ${spreadText(a.leakage, n, pp)})\n`);
  io.stdout.write(`${adv} probe after, control ${spreadText(a.adversaryControlAfter, n, pct)}, selectivity ${spreadText(a.adversarySelectivityAfter, n, pp)}\n`);
  io.stdout.write(`${tgt} head dev accuracy: ${pct(f.targetHeadBefore)} → ${spreadText(a.targetHeadAfter, n, pct)} (non-majority tokens ${pct(f.targetHeadNonMajorityBefore)} → ${spreadText(a.targetHeadNonMajorityAfter, n, pct)})\n`);
  if (n > 1) io.stdout.write(`per seed: ${report.perSeed.map((s) => `seed ${s.seed}: ${adv} probe ${pct(s.findings.adversaryProbeAfter)}, ${tgt} dev ${pct(s.findings.targetHeadAfter)}`).join('; ')}\n`);
  io.stdout.write(`fresh ${adv} head after ${report.config.trainability.steps} steps: original ${pct(f.trainabilityFinalOriginal)}, amnesic (seed ${f.trainabilitySeed}) ${pct(f.trainabilityFinalAmnesic)}\n`);
  io.stdout.write(`report: ${files.html}\nsummary: ${files.summary}\ndata: ${files.json}\n(${report.timings.total} s)\n`);
}

async function runErasure(args: ExperimentArgs, io: CliIO, file: Record<string, unknown> | undefined): Promise<void> {
  const { resolveErasureConfig, runErasureExperiment, writeErasureReport, METHOD_NAMES } = await import('../../experiment/erasure');
  const { spreadText } = await import('../../experiment/report');
  const cfg = resolveErasureConfig(file as never, !!args.quick);
  if (args.threads) cfg.threads = args.threads;
  if (args.tokenizer) cfg.tokenizer = args.tokenizer;
  if (args.label?.length) throw new GrlError('--label applies to the tagger experiment; the erasure experiment takes "concept" and "target" label keys from its config');
  const { report, files } = await runReported(args, io, (h) => runErasureExperiment(cfg, args.out, h), (r) => writeErasureReport(r, args.out));
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ kind: 'erasure', baseline: report.baseline, summary: report.summary, timings: report.timings, files }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`);
    return;
  }
  const b = report.baseline;
  const { concept: c, target: t } = report.model;
  io.stdout.write(`original: ${c} probe ${pct(b.probe.accuracy)} (majority ${pct(b.probe.majority.accuracy)}, control ${pct(b.probe.control?.accuracy ?? NaN)}), MLM acc ${pct(b.mlm.accuracy)}, fresh ${t} head ${pct(b.trainability.finalDevAccuracy)} (non-majority ${pct(b.trainability.finalNonMajority)})\n`);
  for (const m of report.summary) {
    const n = m.seeds.length;
    io.stdout.write(`${METHOD_NAMES[m.method]}${m.rank ? `, rank ${spreadText(m.rank, n, (x) => x.toFixed(0))}` : ''}: ${c} probe ${spreadText(m.probe, n, pct)}, MLM acc ${spreadText(m.mlmAccuracy, n, pct)}, fresh ${t} head ${spreadText(m.targetFinal, n, pct)} (non-majority ${spreadText(m.targetNonMajorityFinal, n, pct)})\n`);
  }
  io.stdout.write(`report: ${files.html}\nsummary: ${files.summary}\ndata: ${files.json}\n(${report.timings.total} s)\n`);
}

export const experimentCommand: GrlCommand<ExperimentArgs> = {
  command: 'experiment [config]',
  describe: 'Remove a concept (POS) from the pretrained encoder by GRL, INLP, LEACE and random directions; probe, MLM accuracy and target trainability before and after; write a report',
  builder: (y: Argv) =>
    withCorpusOptions(y, { label: true })
      .positional('config', { type: 'string', describe: 'JSON config overriding the defaults; "kind": "tagger" runs the tagger experiment (configs/tagger.json)' })
      .option('out', { type: 'string', default: 'grl-experiment', describe: 'Report folder: report.json, report.html, summary.md, runs/' })
      .option('quick', { type: 'boolean', describe: 'Tiny budgets and one seed (unless the config sets seeds.train), same code path (under a minute)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('json', { type: 'boolean', describe: 'Print the findings and report paths as JSON on stdout' })
      .option('truncate', { type: 'boolean', describe: "Tagger experiment: cut ids-JSONL examples longer than the model's sequence limit (default: refuse them)" })
      .option('overwrite', { type: 'boolean', describe: 'Replace a report already in --out (once the inputs are validated)' })
      .example('$0 experiment', 'the erasure experiment on the shipped pretrained encoder and data')
      .example('$0 experiment configs/tagger.json', 'the first experiment: GRL on the shipped tiny tagger')
      .example('$0 experiment --quick --out /tmp/exp', 'a smoke run') as unknown as Argv<ExperimentArgs>,
  handler: async (args, io) => {
    const { loadConfigFile } = await import('../../experiment/config');
    const { experimentKind } = await import('../../experiment/kind');
    const file = args.config ? (loadConfigFile(args.config) as Record<string, unknown>) : undefined;
    const kind = experimentKind(file, args.config);
    await (kind === 'tagger' ? runTagger(args, io, file) : runErasure(args, io, file));
  },
};
