// CLI command `grl-onnx erase`: fit a concept eraser (LEACE, INLP, or random
// directions) on a model's encodings and splice it into the graph, or with --remove
// take spliced erasers out again. Thin: the work is in src/erase/run.ts and
// src/erase/splice.ts; nothing is written unless fitting and splicing (or removing) succeed.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { CliIO, GrlCommand } from '../command';
import { CorpusArgs, corpusFromArgs, withCorpusOptions } from '../corpus';
import { splitLabel } from './probe';
import type { EraseMethod } from '../../erase/eraser';

interface EraseArgs extends Omit<CorpusArgs, 'label'> {
  model: string;
  data?: string;
  label?: string;
  at?: string;
  method?: EraseMethod;
  remove?: string;
  rank?: number;
  iterations?: number;
  tolerance?: number;
  svdTol?: number;
  maxRows?: number;
  epochs?: number;
  lr?: number;
  seed: number;
  replace?: boolean;
  threads?: number;
  output: string;
  json?: boolean;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new GrlError(`--${name} must be a positive integer, got ${v}`);
}

export const eraseCommand: GrlCommand<EraseArgs> = {
  command: 'erase <model>',
  describe: 'Fit a linear concept eraser (LEACE, INLP or random directions) on the encodings at a tensor and splice it into the graph',
  builder: (y: Argv) =>
    withCorpusOptions(y, { label: false })
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX model' })
      .option('data', { type: 'string', describe: 'Data to fit on: ids JSON Lines, or a corpus with --tokenizer (required unless --remove)' })
      .option('label', { type: 'string', describe: 'The label to erase: a head of the model or a key in the data; NAME=COLUMN with --tokenizer (required unless --remove)' })
      .option('at', { type: 'string', describe: 'Tensor to erase at (default: the hidden states the heads read, or last_hidden_state); with --remove, the eraser to take out' })
      .option('method', { choices: ['inlp', 'leace', 'random'] as const, describe: '(required unless --remove)' })
      .option('remove', { type: 'string', describe: 'Take erasers out instead: the one at this tensor (or with this node name), every eraser without a value; the outputs are the model\'s before erase' })
      .option('rank', { type: 'number', describe: 'random: directions to remove (default: the rank INLP removes)' })
      .option('iterations', { type: 'number', describe: 'INLP: maximum classifiers (default 20)' })
      .option('tolerance', { type: 'number', describe: 'INLP: stop when held-out accuracy ≤ majority + this (default 0.01)' })
      .option('svd-tol', { type: 'number', describe: 'LEACE: drop singular values of the whitened cross-covariance at or below this (default 1e-4)' })
      .option('max-rows', { type: 'number', describe: 'Fit on a seeded sample of at most N labelled rows' })
      .option('epochs', { type: 'number', describe: 'INLP: epochs of each linear classifier (default 8)' })
      .option('lr', { type: 'number', describe: 'INLP: AdamW learning rate of each classifier (default 0.01)' })
      .option('seed', { type: 'number', default: 0 })
      .option('replace', { type: 'boolean', describe: 'Replace an eraser already at the tensor' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Output model file' })
      .option('json', { type: 'boolean', describe: 'Print what was fit and spliced as one JSON document' })
      .example('$0 erase models/tiny-tagger.onnx --data data/train.jsonl --label pos --method leace -o erased.onnx', 'LEACE pos out of the hidden states both heads read')
      .example('$0 erase erased.onnx --remove -o restored.onnx', 'Take every eraser out again') as unknown as Argv<EraseArgs>,
  handler: async (args, io) => {
    if (args.remove !== undefined) return removeErasersCommand(args, io);
    const missing = (['data', 'label', 'method'] as const).filter((k) => args[k] === undefined);
    if (missing.length) throw new GrlError(`Missing required argument${missing.length > 1 ? 's' : ''}: ${missing.join(', ')} (to fit an eraser; --remove takes erasers out)`);
    const [data, method] = [args.data as string, args.method as EraseMethod];
    for (const k of ['rank', 'iterations', 'maxRows', 'epochs', 'threads'] as const) positiveInt(k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), args[k]);
    const { loadModel, saveModel } = await import('../../onnx/io');
    const { eraseModel } = await import('../../erase/run');
    const [label, column] = args.tokenizer ? splitLabel(args.label as string) : [args.label as string, undefined];
    const corpus = corpusFromArgs({ ...args, label: undefined }, io, column ? [`${label}=${column}`] : []);
    const model = loadModel(args.model);
    (await import('../../onnx/validate')).assertValidModel(model);
    const r = await eraseModel(model, {
      corpus, data, label, at: args.at, method, rank: args.rank, iterations: args.iterations, tolerance: args.tolerance,
      svdTol: args.svdTol, maxRows: args.maxRows, seed: args.seed, replace: args.replace, threads: args.threads, probe: { epochs: args.epochs, lr: args.lr },
    });
    saveModel(r.model, args.output, { protect: [args.model] });
    if (args.json) {
      io.stdout.write(`${JSON.stringify({ model: args.model, written: args.output, eraser: r.record, replaced: r.replaced ?? null, rowsAvailable: r.rows.available }, null, 1)}\n`);
      return;
    }
    const rec = r.record;
    io.stdout.write(`${rec.method} eraser for '${r.label}' at ${rec.tensor} (dim ${rec.dim}, ${r.rows.used} rows${r.rows.used < r.rows.available ? ` of ${r.rows.available}` : ''}, ${r.fit.numClasses} classes)\n`);
    io.stdout.write(`  removed rank ${rec.rank}; nodes ${rec.nodes.join(', ')}${r.replaced ? ` (replaced a ${r.replaced.method} eraser)` : ''}\n`);
    const inlp = r.fit.inlp;
    if (inlp) {
      const label = rec.method === 'random' ? '  INLP run that set the rank' : '  INLP';
      io.stdout.write(`${label}: ${inlp.iterations.length} classifier${inlp.iterations.length === 1 ? '' : 's'}, stopped: ${inlp.stopped} (tolerance ${pct(inlp.tolerance)}; ${inlp.trainRows} train / ${inlp.devRows} held-out rows)\n`);
      for (const it of inlp.iterations) io.stdout.write(`    ${String(it.iteration).padStart(2)}  accuracy ${pct(it.accuracy)}  majority ${pct(it.majority)}  +${it.added} → rank ${it.rank}\n`);
    }
    if (rec.method === 'leace') {
      const s = r.fit.stats as { traceBefore: number; traceAfter: number; covarianceRank: number };
      io.stdout.write(`  covariance rank ${s.covarianceRank}; trace ${s.traceBefore.toPrecision(5)} → ${s.traceAfter.toPrecision(5)}\n`);
    }
    io.stderr.write(`wrote ${args.output}\n`);
  },
};

/** Fitting options that make no sense with --remove (it fits nothing). */
const FIT_ONLY = ['data', 'label', 'method', 'rank', 'iterations', 'tolerance', 'svdTol', 'maxRows', 'epochs', 'lr', 'replace', 'tokenizer'] as const;

/** `erase --remove [ERASER]`: the model without the selected erasers (all of them by default). */
async function removeErasersCommand(args: EraseArgs, io: CliIO): Promise<void> {
  const given = FIT_ONLY.filter((k) => args[k as keyof EraseArgs] !== undefined);
  if (given.length) throw new GrlError(`--remove fits nothing: drop ${given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
  if (args.remove && args.at && args.remove !== args.at) throw new GrlError(`--remove '${args.remove}' and --at '${args.at}' name different erasers; give one`);
  const which = args.remove || args.at || undefined;
  const { loadModel, saveModel } = await import('../../onnx/io');
  const { removeErasers } = await import('../../erase/splice');
  const model = loadModel(args.model);
  (await import('../../onnx/validate')).assertValidModel(model);
  const { model: out, removed } = removeErasers(model, which);
  saveModel(out, args.output, { protect: [args.model] });
  const remaining = (await import('../../erase/records')).readErasers(out.proto);
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ model: args.model, written: args.output, removed, remaining }, null, 1)}\n`);
  } else {
    for (const r of removed) io.stdout.write(`removed the ${r.method} eraser at ${r.tensor} (rank ${r.rank} of ${r.dim}; nodes ${r.nodes.join(', ')})\n`);
    if (remaining.length) io.stdout.write(`  kept ${remaining.map((r) => `the ${r.method} eraser at ${r.tensor}`).join(', ')}\n`);
  }
  io.stderr.write(`wrote ${args.output}\n`);
}
