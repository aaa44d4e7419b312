// CLI command `grl-onnx heads add|remove`: put task heads (or an MLM head) on an
// encoder export, or take one off. Thin: parses specs and label files; the work
// is in src/heads/. Nothing is written unless everything succeeds, and the
// input model is never the output.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { CliIO, GrlCommand, repeatable, warn } from '../command';
import type { AddHeadSpec } from '../../heads/add';
import type { HeadRecord } from '../../heads/metadata';

interface HeadsArgs {
  action: string;
  model: string;
  name?: string;
  head?: string[];
  from?: string;
  pool?: string;
  mlp?: number;
  adversarial?: string[];
  labels?: string[];
  mlm?: boolean;
  tieEmbeddings?: boolean;
  seed?: number;
  output?: string;
  json?: boolean;
}

/** `pos:17`, `pos:17:token`, `sent:3:seq`, or `pos` (classes from --labels). */
export function parseAddSpec(spec: string): AddHeadSpec {
  const parts = spec.split(':');
  const [name, classes, level, ...rest] = parts;
  if (!name || rest.length) throw new GrlError(`--head ${spec}: expected NAME:CLASSES[:token|seq]`);
  const out: AddHeadSpec = { name };
  if (classes !== undefined) {
    if (!/^\d+$/.test(classes)) throw new GrlError(`--head ${spec}: CLASSES must be an integer, got '${classes}'`);
    out.classes = Number(classes);
  }
  if (level !== undefined) {
    if (level !== 'token' && level !== 'seq') throw new GrlError(`--head ${spec}: level must be 'token' or 'seq', got '${level}'`);
    out.kind = level;
  }
  return out;
}

/** `pos` or `pos:0.1` -> [name, λ] (λ defaults to 1). */
export function parseAdversarial(spec: string): [string, number] {
  const k = spec.lastIndexOf(':');
  if (k < 0) return [spec, 1];
  const lambda = Number(spec.slice(k + 1));
  if (!Number.isFinite(lambda) || spec.slice(k + 1).trim() === '') throw new GrlError(`--adversarial ${spec}: λ must be a finite number`);
  return [spec.slice(0, k), lambda];
}

function describeHead(h: HeadRecord): string {
  if (h.kind === 'mlm') return `MLM head (dense+GELU+LayerNorm, decoder to ${h.classes} tokens, ${h.tied ? 'tied to the word embeddings' : 'untied'})`;
  const body = h.mlp ? `dense ${h.mlp} + GELU + linear → ${h.classes}` : `linear → ${h.classes}`;
  return `${h.kind === 'seq' ? `${h.pool} pooling, ` : ''}${body}`;
}

async function addCommand(args: HeadsArgs, io: CliIO, dest: string): Promise<void> {
  const specs = (args.head ?? []).map(parseAddSpec);
  if (args.mlm) specs.push({ name: 'mlm', kind: 'mlm', tieEmbeddings: args.tieEmbeddings ?? true });
  if (!specs.length) throw new GrlError(`${args.model}: give at least one --head NAME:CLASSES (or --mlm)`);
  if (args.pool !== undefined && args.pool !== 'cls' && args.pool !== 'mean') throw new GrlError(`--pool must be cls or mean, got '${args.pool}'`);
  for (const s of specs) {
    if (args.from !== undefined) s.from = args.from;
    if (s.kind === 'mlm') continue;
    if (args.mlp !== undefined) s.mlp = args.mlp;
    if (s.kind === 'seq' && args.pool) s.pool = args.pool as 'cls' | 'mean';
  }
  for (const a of args.adversarial ?? []) {
    const [name, lambda] = parseAdversarial(a);
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new GrlError(`--adversarial ${a}: '${name}' is not one of the heads being added (${specs.map((s) => s.name).join(', ')}); use \`grl-onnx patch\` for existing heads`);
    spec.adversarial = lambda;
  }
  const { loadLabelFile } = await import('../../heads/labels');
  for (const l of args.labels ?? []) {
    const eq = l.indexOf('=');
    const targets = eq > 0 ? specs.filter((s) => s.name === l.slice(0, eq)) : specs.filter((s) => s.kind !== 'mlm');
    const file = eq > 0 ? l.slice(eq + 1) : l;
    if (eq > 0 && !targets.length) throw new GrlError(`--labels ${l}: '${l.slice(0, eq)}' is not one of the heads being added`);
    if (eq <= 0 && !file.endsWith('.json')) throw new GrlError(`--labels ${l}: give NAME=FILE, or a .labels.json vocabulary`);
    for (const s of targets) {
      if (eq <= 0) {
        try {
          s.labels = loadLabelFile(file, s.name);
        } catch {
          continue; // a vocabulary file names the heads it has labels for
        }
      } else {
        s.labels = loadLabelFile(file, s.name);
      }
    }
  }

  const { loadModel, saveModel } = await import('../../onnx/io');
  const { addHeads } = await import('../../heads/add');
  const model = loadModel(args.model);
  (await import('../../onnx/validate')).assertValidModel(model);
  const result = addHeads(model, specs, { seed: args.seed });
  saveModel(result.model, dest, { protect: [args.model] });
  for (const w of result.warnings) warn(io, w);
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ input: model.source, output: dest, heads: result.heads }, null, 2)}\n`);
    return;
  }
  for (const h of result.heads) {
    const spec = specs.find((s) => s.name === h.name);
    const grl = spec?.adversarial !== undefined ? `; GRL λ=${spec.adversarial}` : '';
    const labels = spec?.labels ? `; ${spec.labels.length} label names` : '';
    io.stderr.write(`added ${h.name} -> ${h.output}: ${describeHead(h)}, reads '${h.from}'${grl}${labels}\n`);
  }
  io.stderr.write(`wrote ${dest}\n`);
}

async function removeCommand(args: HeadsArgs, io: CliIO, dest: string): Promise<void> {
  if (!args.name) throw new GrlError(`${args.model}: name the head to remove: grl-onnx heads remove MODEL NAME -o OUT`);
  const { loadModel, saveModel } = await import('../../onnx/io');
  const { removeHead } = await import('../../heads/add');
  const model = loadModel(args.model);
  (await import('../../onnx/validate')).assertValidModel(model);
  const r = removeHead(model, args.name);
  saveModel(r.model, dest, { protect: [args.model] });
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ input: model.source, output: dest, head: r.head, removedOutput: r.output, removedNodes: r.removedNodes, removedInitializers: r.removedInitializers }, null, 2)}\n`);
    return;
  }
  io.stderr.write(`removed ${r.head} (${r.output}): ${r.removedNodes} nodes, ${r.removedInitializers.length} initializers${r.removedInitializers.length ? ` (${r.removedInitializers.join(', ')})` : ''}\n`);
  io.stderr.write(`wrote ${dest}\n`);
}

export const headsCommand: GrlCommand<HeadsArgs> = {
  command: 'heads <action> <model> [name]',
  describe: 'Add task heads (or an MLM head) to an encoder export, or remove a head',
  builder: (y: Argv) =>
    y
      .positional('action', { type: 'string', choices: ['add', 'remove'], describe: 'add heads, or remove the head NAME' })
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX model file' })
      .positional('name', { type: 'string', describe: 'remove: the head to remove (pos, pos_logits, logits, mlm)' })
      .option('head', { type: 'string', coerce: repeatable, describe: 'add: NAME:CLASSES[:token|seq] (repeatable); CLASSES may come from --labels' })
      .option('from', { type: 'string', describe: 'add: hidden-state tensor [B, T, d] the heads read (default last_hidden_state; see inspect)' })
      .option('pool', { type: 'string', describe: 'add: pooling of :seq heads, cls (first token, default) or mean (over attention_mask == 1)' })
      .option('mlp', { type: 'number', describe: 'add: a dense layer of this width + GELU before the projection' })
      .option('adversarial', { type: 'string', coerce: repeatable, describe: 'add: NAME[:λ] splices a gradient-reversal layer before that new head (repeatable)' })
      .option('labels', { type: 'string', coerce: repeatable, describe: 'add: NAME=FILE (one label per line, or a .labels.json), or a .labels.json for every head it names' })
      .option('mlm', { type: 'boolean', describe: 'add: a BERT-style masked-LM head `mlm` (output mlm_logits [B, T, vocab])' })
      .option('tie-embeddings', { type: 'boolean', default: true, describe: 'add --mlm: the decoder uses the word-embedding table (--no-tie-embeddings: a copy)' })
      .option('seed', { type: 'number', default: 0, describe: 'add: seed of the nn.Linear-style initialisation' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Output model file (never the input)' })
      .option('json', { type: 'boolean', describe: 'Print a JSON report on stdout' })
      .example('$0 heads add encoder.onnx --head pos:17 --head ner:9 --adversarial pos:0.1 -o tagger.onnx', 'two token heads, pos adversarial')
      .example('$0 heads add encoder.onnx --head topic:4:seq --pool mean -o clf.onnx', 'a sequence head on mean-pooled states')
      .example('$0 heads add encoder.onnx --mlm -o mlm.onnx', 'a masked-LM head tied to the word embeddings')
      .example('$0 heads remove tagger.onnx ner -o tagger-pos.onnx', 'take a head off') as unknown as Argv<HeadsArgs>,
  handler: async (args, io) => {
    const dest = args.output as string;
    if (dest === '-') throw new GrlError('heads: give -o FILE (stdout is not supported)');
    if (args.seed !== undefined && !Number.isInteger(args.seed)) throw new GrlError(`--seed must be an integer, got ${args.seed}`);
    if (args.action === 'add') {
      if (args.name !== undefined) throw new GrlError(`heads add takes one MODEL; give heads with --head NAME:CLASSES (got extra argument '${args.name}')`);
      await addCommand(args, io, dest);
    } else {
      await removeCommand(args, io, dest);
    }
  },
};
