// CLI command `grl-onnx experiment`: the amnesic experiment of issue 4 on the
// shipped tagger and data (or a config file). Progress goes to stderr (a line
// per stage, a bar on a TTY); the report goes to DIR; --json prints the
// findings on stdout.
import type { Argv } from 'yargs';
import { GrlCommand, warn } from '../command';
import { CorpusArgs, corpusFromArgs, withCorpusOptions } from '../corpus';

interface ExperimentArgs extends CorpusArgs {
  config?: string;
  out: string;
  quick?: boolean;
  threads?: number;
  json?: boolean;
  truncate?: boolean;
  overwrite?: boolean;
}

export const experimentCommand: GrlCommand<ExperimentArgs> = {
  command: 'experiment [config]',
  describe: 'Run the amnesic experiment (probe, GRL training, probe again, trainability) and write a report',
  builder: (y: Argv) =>
    withCorpusOptions(y, { label: true })
      .positional('config', { type: 'string', describe: 'JSON config overriding the defaults (model, data, heads, λ, steps, seeds, probe)' })
      .option('out', { type: 'string', default: 'grl-experiment', describe: 'Report folder: report.json, report.html, summary.md, runs/' })
      .option('quick', { type: 'boolean', describe: 'Tiny step counts and one training seed (unless the config sets seeds.train), same code path (under a minute)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('truncate', { type: 'boolean', describe: "Cut examples longer than the model's sequence limit (default: refuse them)" })
      .option('overwrite', { type: 'boolean', describe: 'Replace a report already in --out (once the inputs are validated)' })
      .option('json', { type: 'boolean', describe: 'Print the findings and report paths as JSON on stdout' })
      .example('$0 experiment', 'the whole experiment on the shipped model and data')
      .example('$0 experiment --quick --out /tmp/exp', 'a smoke run') as unknown as Argv<ExperimentArgs>,
  handler: async (args, io) => {
    const { loadConfigFile, resolveConfig } = await import('../../experiment/config');
    const { runExperiment } = await import('../../experiment/run');
    const { writeReport, spreadText } = await import('../../experiment/report');
    const cfg = resolveConfig(args.config ? loadConfigFile(args.config) : undefined, !!args.quick);
    if (args.threads) cfg.threads = args.threads;
    if (args.truncate) cfg.truncate = true;
    const corpus = corpusFromArgs(args, io);
    if (corpus) cfg.corpus = corpus;
    const { RunFolder } = await import('../../train/run-folder');
    const { REPORT_FILES } = await import('../../experiment/report');
    const folder = new RunFolder(args.out, { markers: [REPORT_FILES.json, REPORT_FILES.summary, 'runs'], files: [...Object.values(REPORT_FILES), 'runs'], overwrite: args.overwrite, command: 'grl-onnx experiment' });
    const tty = !!(process.stderr as { isTTY?: boolean }).isTTY && io.stderr === process.stderr;
    let bar: import('cli-progress').SingleBar | undefined;
    let barStage = '';
    let lastLine = -1;
    const stopBar = () => {
      bar?.stop();
      bar = undefined;
      barStage = '';
    };
    const report = await runExperiment(cfg, args.out, {
      beforeWrite: () => {
        folder.claim();
        for (const n of folder.notes) warn(io, n);
      },
      onStage: (stage, message) => {
        stopBar();
        io.stderr.write(`[${stage}] ${message}\n`);
      },
      onWarning: (m) => warn(io, m),
      onProgress: (stage, done, total, info) => {
        if (tty) {
          if (barStage !== stage) {
            stopBar();
            const { SingleBar, Presets } = require('cli-progress') as typeof import('cli-progress');
            bar = new SingleBar({ format: `${stage} {value}/{total} [{bar}] eta {eta_formatted} | {info}`, hideCursor: true, stream: process.stderr }, Presets.shades_classic);
            bar.start(total, 0, { info });
            barStage = stage;
          }
          bar?.update(done, { info });
          if (done === total) stopBar();
          return;
        }
        // Not a TTY: a line every 10% of the stage.
        const tenth = Math.floor((done * 10) / total);
        if (done === total || tenth !== lastLine) {
          lastLine = tenth;
          io.stderr.write(`[${stage}] step ${done}/${total} ${info}\n`);
        }
      },
    }).catch((e) => {
      folder.release();
      throw e;
    });
    stopBar();
    const files = await writeReport(report, args.out).finally(() => folder.release());
    if (args.json) {
      io.stdout.write(`${JSON.stringify({ findings: report.findings, timings: report.timings, files }, null, 1)}\n`);
      return;
    }
    const f = report.findings;
    const a = f.after;
    const n = report.perSeed.length;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const pp = (x: number) => `${(x * 100).toFixed(1)} pp`;
    const { adversary: adv, target: tgt } = report.model;
    io.stdout.write(`${adv} probe: ${pct(f.adversaryProbeBefore)} → ${spreadText(a.adversaryProbeAfter, n, pct)} (majority ${pct(f.adversaryMajority)}, leakage ${spreadText(a.leakage, n, pp)})\n`);
    io.stdout.write(`${adv} probe after, control ${spreadText(a.adversaryControlAfter, n, pct)}, selectivity ${spreadText(a.adversarySelectivityAfter, n, pp)}\n`);
    io.stdout.write(`${tgt} head dev accuracy: ${pct(f.targetHeadBefore)} → ${spreadText(a.targetHeadAfter, n, pct)} (non-majority tokens ${pct(f.targetHeadNonMajorityBefore)} → ${spreadText(a.targetHeadNonMajorityAfter, n, pct)})\n`);
    if (n > 1) io.stdout.write(`per seed: ${report.perSeed.map((s) => `seed ${s.seed}: ${adv} probe ${pct(s.findings.adversaryProbeAfter)}, ${tgt} dev ${pct(s.findings.targetHeadAfter)}`).join('; ')}\n`);
    io.stdout.write(`fresh ${adv} head after ${report.config.trainability.steps} steps: original ${pct(f.trainabilityFinalOriginal)}, amnesic (seed ${f.trainabilitySeed}) ${pct(f.trainabilityFinalAmnesic)}\n`);
    io.stdout.write(`report: ${files.html}\nsummary: ${files.summary}\ndata: ${files.json}\n(${report.timings.total} s)\n`);
  },
};
