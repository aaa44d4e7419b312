// CLI command `grl-onnx train`: thin wrapper over src/train/trainer.ts. It
// parses loss/head specs, shows a progress bar on a TTY (one JSON object per
// step otherwise or with --json), and turns Ctrl-C into "save a checkpoint and
// stop" instead of losing the run.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { CliIO, GrlCommand, repeatable, warn } from '../command';
import { CorpusArgs, corpusFromArgs, withCorpusOptions } from '../corpus';
import { parseHeadSpec } from './patch';
import { classTable } from '../class-table';
import type { StepRecord, EvalRecord, HeadMetrics } from '../../train/trainer';
import type { LossKind } from '../../grad/losses';
import type { TrainLossKind } from '../../train/mlm';

interface TrainArgs extends CorpusArgs {
  model: string;
  data: string;
  eval?: string;
  loss: string[];
  head?: string[];
  lambdaSchedule: string;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  momentum?: number;
  weightDecay?: number;
  lrSchedule: string;
  warmup: number;
  gradClip?: number;
  gradAccum: number;
  freeze?: string[];
  trainable?: string[];
  steps?: number;
  epochs?: number;
  batchSize: number;
  shuffle: boolean;
  seed: number;
  evalEvery?: number;
  checkpointEvery?: number;
  resume?: string;
  overwrite?: boolean;
  out?: string;
  skipNonfinite?: boolean;
  truncate?: boolean;
  threads?: number;
  json?: boolean;
  maskTokenId?: number;
  specialIds?: number[];
  mlmProbability?: number;
}

/** `--special-ids 0,100,101`: comma-separated non-negative integers. */
export function parseIdList(v: string | string[]): number[] {
  const out: number[] = [];
  for (const part of ([] as string[]).concat(v).join(',').split(',')) {
    if (!part.trim()) continue;
    const x = Number(part);
    if (!Number.isInteger(x) || x < 0) throw new GrlError(`--special-ids: '${part}' is not a token id (a non-negative integer)`);
    out.push(x);
  }
  return out;
}

const LOSS_KINDS: readonly LossKind[] = ['ce', 'mse'];
/** `train` also takes 'mlm': cross-entropy on labels the trainer makes by masking (src/train/mlm.ts). */
const TRAIN_LOSS_KINDS: readonly TrainLossKind[] = ['ce', 'mse', 'mlm'];
const isNumber = (s: string) => s.trim() !== '' && Number.isFinite(Number(s));
const either = (xs: readonly string[]) => `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;

/** `HEAD[:WEIGHT][:ce|mse]`: `pos`, `pos:0.5`, `score:mse`, `score:0.5:mse` → head, weight and kind. */
export const parseLossSpec = (spec: string) => parseLossSpecOf(spec, LOSS_KINDS);
/** `train`'s `HEAD[:WEIGHT][:ce|mse|mlm]`. */
export const parseTrainLossSpec = (spec: string) => parseLossSpecOf(spec, TRAIN_LOSS_KINDS);

function parseLossSpecOf<K extends string>(spec: string, kinds: readonly K[]): { head: string; weight: number; kind?: K } {
  let rest = spec;
  let kind: K | undefined;
  const last = rest.lastIndexOf(':');
  if (last > 0 && (kinds as readonly string[]).includes(rest.slice(last + 1))) {
    kind = rest.slice(last + 1) as K;
    rest = rest.slice(0, last);
  } else if (last > 0 && !isNumber(rest.slice(last + 1))) {
    const before = rest.lastIndexOf(':', last - 1);
    if (before > 0 && isNumber(rest.slice(before + 1, last))) throw new GrlError(`--loss ${spec}: kind must be ${either(kinds)}`);
    throw new GrlError(`--loss ${spec}: '${rest.slice(last + 1)}' is neither a weight nor a kind (${either(kinds)}); expected HEAD[:WEIGHT][:${kinds.join('|')}]`);
  }
  const k = rest.lastIndexOf(':');
  if (k <= 0) return { head: rest, weight: 1, ...(kind ? { kind } : {}) };
  const w = rest.slice(k + 1);
  if (!isNumber(w)) throw new GrlError(`--loss ${spec}: the weight must be a finite number`);
  const head = rest.slice(0, k);
  const misplaced = kinds.find((kd) => head.endsWith(`:${kd}`));
  if (misplaced && !kind) throw new GrlError(`--loss ${spec}: the kind goes last: ${head.slice(0, -misplaced.length - 1)}:${w}:${misplaced}`);
  return { head, weight: Number(w), ...(kind ? { kind } : {}) };
}

const fmt = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** One head's eval metrics for people: accuracy, macro-F1 (and span F1) for CE heads, mean absolute error for MSE heads. */
export function headEval(h: string, m: HeadMetrics): string {
  if (m.accuracy === undefined) return `${h} mse ${fmt(m.loss)} mae ${fmt(m.mae ?? NaN)}`;
  const f1 = `${m.macro_f1 !== undefined ? ` macro-F1 ${fmt(m.macro_f1 * 100, 2)}%` : ''}${m.span_f1 !== undefined ? ` span-F1 ${fmt(m.span_f1 * 100, 2)}%` : ''}`;
  return `${h} loss ${fmt(m.loss)} acc ${fmt(m.accuracy * 100, 2)}%${f1}`;
}

/** The per-class tables of the run's last eval (heads scored per class only). */
function classTables(e: EvalRecord): string {
  const lines: string[] = [];
  for (const [h, m] of Object.entries(e.heads)) {
    if (!m.per_class || m.macro_f1 === undefined || m.accuracy === undefined) continue;
    lines.push(...classTable(h, { ...m, per_class: m.per_class, macro_f1: m.macro_f1, accuracy: m.accuracy }));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function stepLine(r: StepRecord): Record<string, unknown> {
  const o: Record<string, unknown> = { step: r.step, loss: r.loss };
  for (const [h, v] of Object.entries(r.losses)) o[`loss_${h}`] = v;
  for (const [h, v] of Object.entries(r.accuracy)) o[`acc_${h}`] = v;
  o.lambda = r.lambda;
  o.lr = r.lr;
  o.grad_norm = r.grad_norm;
  o.step_ms = r.step_ms;
  o.epoch = r.epoch;
  if (r.skipped) o.skipped = true;
  return o;
}

export const trainCommand: GrlCommand<TrainArgs> = {
  command: 'train <model>',
  describe: 'Train a (GRL-patched) model on JSONL data with onnxruntime-node',
  builder: (y: Argv) =>
    withCorpusOptions(y, { label: true })
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX model (patched, or give --head to patch on the fly)' })
      .option('data', { type: 'string', demandOption: true, describe: 'Training data: ids JSON Lines, or a corpus with --tokenizer (plain text for MLM: *.txt or --format text)' })
      .option('eval', { type: 'string', describe: 'Dev data, JSON Lines' })
      .option('loss', { type: 'string', coerce: repeatable, demandOption: true, describe: 'Loss head HEAD[:WEIGHT][:ce|mse|mlm]: cross-entropy (default), mean-squared error, or masked LM (default for an mlm_logits head) (repeatable)' })
      .option('mask-token-id', { type: 'number', describe: 'MLM: the mask token id (default: the tokenizer\'s)' })
      .option('special-ids', { type: 'string', coerce: parseIdList, describe: 'MLM: ids never masked, comma-separated (default: the tokenizer\'s special tokens)' })
      .option('mlm-probability', { type: 'number', describe: 'MLM: fraction of tokens predicted per sequence (default 0.15)' })
      .option('head', { type: 'string', coerce: repeatable, describe: 'Splice a GRL on HEAD[:LAMBDA] first (repeatable)' })
      .option('lambda-schedule', { type: 'string', default: 'constant', describe: 'constant | dann | linear:WARMUP_STEPS' })
      .option('optimizer', { choices: ['adamw', 'sgd'] as const, default: 'adamw' as const })
      .option('lr', { type: 'number', demandOption: true, describe: 'Learning rate' })
      .option('momentum', { type: 'number', describe: 'SGD momentum (default 0)' })
      .option('weight-decay', { type: 'number', describe: 'Weight decay (AdamW default 0.01, SGD 0)' })
      .option('lr-schedule', { choices: ['constant', 'linear', 'cosine'], default: 'constant' })
      .option('warmup', { type: 'number', default: 0, describe: 'Learning-rate warm-up steps' })
      .option('grad-clip', { type: 'number', describe: 'Clip the global gradient norm to this value' })
      .option('grad-accum', { type: 'number', default: 1, describe: 'Micro-batches per optimizer step' })
      .option('freeze', { type: 'string', coerce: repeatable, describe: 'Freeze initializers matching a glob or /regex/ (repeatable)' })
      .option('trainable', { type: 'string', coerce: repeatable, describe: 'Train only initializers matching a glob or /regex/ (repeatable)' })
      .option('steps', { type: 'number', describe: 'Optimizer steps' })
      .option('epochs', { type: 'number', describe: 'Epochs (instead of --steps)' })
      .option('batch-size', { type: 'number', demandOption: true })
      .option('shuffle', { type: 'boolean', default: true, describe: 'Shuffle each epoch (--no-shuffle keeps file order)' })
      .option('seed', { type: 'number', default: 0 })
      .option('eval-every', { type: 'number', describe: 'Evaluate on --eval every N steps' })
      .option('checkpoint-every', { type: 'number', describe: 'Save a checkpoint every N steps' })
      .option('resume', { type: 'string', describe: 'Continue the run in DIR from its last checkpoint' })
      .option('out', { type: 'string', describe: 'Run folder: model.onnx, checkpoint, metrics.jsonl, artifacts/' })
      .option('overwrite', { type: 'boolean', describe: 'Replace a run already in --out (once the new run has validated its inputs)' })
      .option('skip-nonfinite', { type: 'boolean', describe: 'Skip batches with a NaN/inf loss instead of stopping' })
      .option('truncate', { type: 'boolean', describe: "Cut examples longer than the model's sequence limit (default: refuse them)" })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('json', { type: 'boolean', describe: 'One JSON object per step on stdout (default when stdout is not a TTY)' })
      .conflicts('steps', 'epochs')
      .check((a) => {
        if (!a.out && !a.resume) throw new GrlError('give --out DIR (or --resume DIR)');
        if (a.batchSize !== undefined && !(Number(a.batchSize) >= 1)) throw new GrlError('--batch-size must be at least 1');
        return true;
      })
      .example('$0 train models/tagger-opset17.onnx --data data/train.jsonl --loss pos --loss ner:0.5 --head pos --lambda-schedule dann --lr 1e-3 --steps 200 --batch-size 16 --out run/', 'amnesic training') as unknown as Argv<TrainArgs>,
  handler: async (args, io) => {
    const { train } = await import('../../train/trainer');
    // --json, --no-json, or JSON when stdout is not a terminal.
    const json = args.json ?? !io.stdout.isTTY;
    let stop = false;
    const onSigint = () => {
      if (stop) process.exit(130);
      stop = true;
      warn(io, 'interrupted: finishing this step and saving a checkpoint (Ctrl-C again to abort)');
    };
    process.on('SIGINT', onSigint);
    let bar: import('cli-progress').SingleBar | undefined;
    let lastMetrics = '';
    const heads = args.head?.map(parseHeadSpec);
    try {
      const summary = await train(
        {
          model: args.model, data: args.data, eval: args.eval,
          losses: args.loss.map(parseTrainLossSpec), heads,
          lambdaSchedule: args.lambdaSchedule, optimizer: args.optimizer, lr: args.lr, momentum: args.momentum,
          weightDecay: args.weightDecay, lrSchedule: args.lrSchedule, warmup: args.warmup, gradClip: args.gradClip,
          gradAccum: args.gradAccum, freeze: args.freeze, trainable: args.trainable, steps: args.steps, epochs: args.epochs,
          batchSize: args.batchSize, shuffle: args.shuffle, seed: args.seed, evalEvery: args.evalEvery,
          checkpointEvery: args.checkpointEvery, resume: args.resume, overwrite: args.overwrite, out: args.out ?? (args.resume as string),
          skipNonfinite: args.skipNonfinite, truncate: args.truncate, threads: args.threads, corpus: corpusFromArgs(args, io),
          mlm: { maskTokenId: args.maskTokenId, specialIds: args.specialIds, probability: args.mlmProbability },
        },
        {
          onStart: (info) => {
            if (info.truncated) warn(io, `truncated ${info.truncated} example${info.truncated === 1 ? '' : 's'} to the model's sequence limit (--truncate)`);
            if (json) return;
            const { SingleBar, Presets } = require('cli-progress') as typeof import('cli-progress');
            bar = new SingleBar({ format: 'step {value}/{total} [{bar}] eta {eta_formatted} | {metrics}', hideCursor: true, stream: process.stdout }, Presets.shades_classic);
            bar.start(info.totalSteps, info.startStep, { metrics: `${info.examples} examples, ${info.trainableParams} trainable parameters` });
          },
          onStep: (r) => {
            if (json) {
              io.stdout.write(`${JSON.stringify(stepLine(r))}\n`);
              return;
            }
            // MSE heads have no accuracy: their loss alone.
            const heads = Object.keys(r.losses).map((h) => (h in r.accuracy ? `${h} ${fmt(r.losses[h], 3)}/${fmt(r.accuracy[h] * 100, 1)}%` : `${h} mse ${fmt(r.losses[h], 3)}`)).join(' ');
            const lam = Object.entries(r.lambda).map(([h, v]) => `λ(${h}) ${fmt(v, 3)}`).join(' ');
            lastMetrics = `loss ${fmt(r.loss)} | ${heads} | ${lam} lr ${r.lr.toExponential(2)}`;
            bar?.update(r.step, { metrics: lastMetrics });
          },
          onEval: (e: EvalRecord) => {
            if (json) {
              io.stdout.write(`${JSON.stringify({ eval: e })}\n`);
              return;
            }
            const heads = Object.entries(e.heads).map(([h, m]) => headEval(h, m)).join(', ');
            bar?.stop();
            io.stdout.write(`eval @ step ${e.step}: ${heads}\n`);
            if (bar && e.step < bar.getTotal()) bar.start(bar.getTotal(), e.step, { metrics: lastMetrics });
          },
          shouldStop: () => stop,
          onWarning: (m) => warn(io, m),
        },
      );
      bar?.stop();
      const s = summary;
      if (json) {
        io.stdout.write(`${JSON.stringify({ summary: { steps: s.steps, start_step: s.startStep, total_steps: s.totalSteps, interrupted: s.interrupted, loss: s.lastStep?.loss, eval: s.lastEval, median_step_ms: s.medianStepMs, model: s.interrupted ? null : s.model, checkpoint: s.checkpoint, metrics: s.metrics } })}\n`);
      } else {
        const last = s.lastStep;
        io.stdout.write(`${s.interrupted ? 'interrupted' : 'done'}: ${s.startStep + s.steps}/${s.totalSteps} steps${last ? `, loss ${fmt(last.loss)}` : ''}, median step ${fmt(s.medianStepMs, 1)} ms\n`);
        if (s.lastEval) io.stdout.write(`dev: ${Object.entries(s.lastEval.heads).map(([h, m]) => headEval(h, m)).join(', ')}\n${classTables(s.lastEval)}`);
        io.stdout.write(s.interrupted ? `checkpoint: ${s.checkpoint} (continue with --resume ${s.out})\n` : `model: ${s.model}\ncheckpoint: ${s.checkpoint}\nmetrics: ${s.metrics}\n`);
      }
      if (s.interrupted) io.exitCode = 130;
    } finally {
      bar?.stop();
      process.off('SIGINT', onSigint);
    }
  },
};
