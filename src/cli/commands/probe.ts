// CLI command `grl-onnx probe`: a fresh post-hoc probe on frozen encodings.
// Thin: takes features at a head's splice point (or --at) with
// src/probe/features.ts, trains and scores the probe with src/probe/probe.ts.
import * as fs from 'fs';
import * as path from 'path';
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { GrlCommand, warn } from '../command';
import { CorpusArgs, corpusFromArgs, withCorpusOptions } from '../corpus';
import { spanLine } from '../class-table';

interface ProbeArgs extends Omit<CorpusArgs, 'label'> {
  model: string;
  data: string;
  label: string;
  eval?: string;
  at?: string;
  probe: 'linear' | 'mlp';
  hidden: number;
  control?: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  maxTrainRows?: number;
  seed: number;
  threads?: number;
  truncate?: boolean;
  json?: boolean;
}

/** The held-out split: --eval, else dev.jsonl next to the training data. */
export function defaultEvalFile(data: string, given?: string): string {
  if (given) {
    if (path.resolve(given) === path.resolve(data)) throw new GrlError(`--eval ${given}: the held-out split must differ from --data`);
    return given;
  }
  const dev = path.join(path.dirname(data), 'dev.jsonl');
  if (path.resolve(dev) !== path.resolve(data) && fs.existsSync(dev)) return dev;
  const why = path.resolve(dev) === path.resolve(data) ? `${data} is itself the default held-out split` : `there is no dev.jsonl next to ${data}`;
  throw new GrlError(`no held-out split: give --eval FILE, a different split (${why})`);
}

/** `--label HEAD=COLUMN` (with --tokenizer): the head and the corpus column its labels come from. */
export function splitLabel(label: string): [string, string] {
  const k = label.indexOf('=');
  if (k <= 0 || k === label.length - 1) throw new GrlError(`--label ${label}: with --tokenizer give HEAD=COLUMN (e.g. pos=upos)`);
  return [label.slice(0, k), label.slice(k + 1)];
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export const probeCommand: GrlCommand<ProbeArgs> = {
  command: 'probe <model>',
  describe: 'Train a fresh probe on frozen encodings and report held-out accuracy vs. majority (and control)',
  builder: (y: Argv) =>
    withCorpusOptions(y, { label: false })
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX model (the encoder is frozen)' })
      .option('data', { type: 'string', demandOption: true, describe: 'Probe training data: ids JSON Lines, or a corpus with --tokenizer' })
      .option('label', { type: 'string', demandOption: true, describe: 'Head whose labels are probed (its splice point is the default tensor); HEAD=COLUMN with --tokenizer' })
      .option('eval', { type: 'string', describe: 'Held-out data (default: dev.jsonl next to --data)' })
      .option('at', { type: 'string', describe: 'Take features at this tensor instead of the head\'s splice point' })
      .option('probe', { choices: ['linear', 'mlp'] as const, default: 'linear' as const })
      .option('hidden', { type: 'number', default: 128, describe: 'MLP hidden width' })
      .option('control', { type: 'boolean', describe: 'Also train on a control task (Hewitt & Liang) and report selectivity' })
      .option('epochs', { type: 'number', default: 4 })
      .option('batch-size', { type: 'number', default: 256 })
      .option('lr', { type: 'number', default: 3e-3, describe: 'AdamW learning rate of the probe' })
      .option('max-train-rows', { type: 'number', describe: 'Train on a seeded sample of at most N rows' })
      .option('seed', { type: 'number', default: 0 })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads' })
      .option('truncate', { type: 'boolean', describe: "Cut examples longer than the model's sequence limit (default: refuse them)" })
      .option('json', { type: 'boolean', describe: 'Print the result as one JSON document' })
      .example('$0 probe models/tiny-tagger.onnx --data data/train.jsonl --label pos --control', 'how decodable is POS at the pos head\'s splice point?') as unknown as Argv<ProbeArgs>,
  handler: async (args, io) => {
    const { loadModel } = await import('../../onnx/io');
    const { resolveHead } = await import('../../patch/heads');
    const { countTruncated } = await import('../../data/jsonl');
    const { loadExamples, corpusForEval, corpusForModel, corpusLabelNames } = await import('../../data/examples');
    const [headName, column] = args.tokenizer ? splitLabel(args.label) : [args.label, undefined];
    const { extractFeatures } = await import('../../probe/features');
    const { runProbe } = await import('../../probe/probe');
    const { headShape, taggerSpec } = await import('../../experiment/models');
    const { readLabelNames, labelName } = await import('../../heads/labels');
    const evalFile = defaultEvalFile(args.data, args.eval);
    const model = loadModel(args.model);
    const head = resolveHead(model, headName);
    const c = corpusFromArgs({ ...args, label: undefined }, io, column ? [`${head.name}=${column}`] : []);
    const corpus = c && corpusForModel(c, model);
    const tensor = args.at ?? head.spliceTensor;
    const spec = taggerSpec(model, [head], !!args.truncate);
    const shape = headShape(model, head);
    const session = args.threads ? { intraOpNumThreads: args.threads } : undefined;
    const fopts = { tensor, label: head.name, tokenLevel: shape.tokenLevel, session };
    const trainSet = loadExamples(args.data, spec, corpus);
    const testSet = loadExamples(evalFile, spec, corpus && corpusForEval(corpus, args.data));
    const truncated = countTruncated(trainSet) + countTruncated(testSet);
    if (truncated) warn(io, `truncated ${truncated} example${truncated === 1 ? '' : 's'} to the model's sequence limit (--truncate)`);
    const train = await extractFeatures(model, trainSet, spec, fopts);
    const test = await extractFeatures(model, testSet, spec, fopts);
    const names = readLabelNames(model, head.name) ?? (corpus ? corpusLabelNames(args.data, corpus)[head.name] : undefined);
    const r = await runProbe(train, test, {
      labelNames: names,
      numClasses: shape.numClasses, kind: args.probe, hidden: args.hidden, epochs: args.epochs, batchSize: args.batchSize,
      lr: args.lr, seed: args.seed, control: args.control, maxTrainRows: args.maxTrainRows, threads: args.threads,
    });
    if (args.json) {
      io.stdout.write(`${JSON.stringify({ model: args.model, head: head.name, tensor, data: args.data, eval: evalFile, seed: args.seed, ...r, ...(names ? { labelNames: names } : {}) }, null, 1)}\n`);
      return;
    }
    io.stdout.write(`${args.probe} probe for '${head.name}' at ${tensor} (dim ${r.dim}, ${r.trainRows} training rows, ${r.rows} held-out rows in ${evalFile})\n`);
    io.stdout.write(`  accuracy  ${pct(r.accuracy)}   (train ${pct(r.trainAccuracy)}, macro-F1 ${pct(r.macroF1)}, non-majority rows ${pct(r.nonMajorityAccuracy)})\n`);
    if (r.spans) io.stdout.write(`  ${spanLine(r.spans)}\n`);
    io.stdout.write(`  majority  ${pct(r.majority.accuracy)}   (class ${labelName(names, r.majority.label)})\n`);
    if (r.control) io.stdout.write(`  control   ${pct(r.control.accuracy)}   selectivity ${((r.selectivity ?? 0) * 100).toFixed(2)} pp\n`);
  },
};
