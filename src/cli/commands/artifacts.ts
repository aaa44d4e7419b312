// CLI command `grl-onnx artifacts`: write ONNX Runtime's on-device training
// file set (training, eval and optimizer models plus an ORT-format checkpoint)
// for a model, patching GRLs first when --head is given. --layout ort writes
// what ORT's own training runtime runs (src/train/layouts/ort.ts). Thin: the work is in
// src/train/artifacts.ts.
import type { Argv } from 'yargs';
import { GrlCommand, repeatable, warn } from '../command';
import { parseHeadSpec } from './patch';
import { parseLossSpec } from './train';

interface ArtifactsArgs {
  model: string;
  loss: string[];
  head?: string[];
  freeze?: string[];
  trainable?: string[];
  optimizer: 'adamw' | 'sgd';
  lr: number;
  output: string;
  json?: boolean;
  rowSparseGradients?: boolean;
  layout: 'grl' | 'ort';
  weightDecay?: number;
  momentum?: number;
  gradClip?: number;
  overwrite?: boolean;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export const artifactsCommand: GrlCommand<ArtifactsArgs> = {
  command: 'artifacts <model>',
  describe: 'Write training artifacts: training_model.onnx, eval_model.onnx, optimizer_model.onnx, checkpoint',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX model (patched, or give --head)' })
      .option('loss', { type: 'string', coerce: repeatable, demandOption: true, describe: 'Loss head HEAD[:WEIGHT][:ce|mse] (repeatable; ce is the default)' })
      .option('head', { type: 'string', coerce: repeatable, describe: 'Splice a GRL on HEAD[:LAMBDA] first (repeatable)' })
      .option('freeze', { type: 'string', coerce: repeatable, describe: 'Freeze initializers matching a glob or /regex/ (repeatable)' })
      .option('trainable', { type: 'string', coerce: repeatable, describe: 'Train only initializers matching a glob or /regex/ (repeatable)' })
      .option('optimizer', { choices: ['adamw', 'sgd'] as const, default: 'adamw' as const })
      .option('lr', { type: 'number', default: 1e-3, describe: 'Learning rate stored in the checkpoint' })
      .option('weight-decay', { type: 'number', describe: 'Weight decay (AdamW default 0.01, SGD 0)' })
      .option('momentum', { type: 'number', describe: 'SGD momentum (default 0)' })
      .option('grad-clip', { type: 'number', describe: 'Clip the global gradient norm to this value (default: no clipping)' })
      .option('layout', { choices: ['grl', 'ort'] as const, default: 'grl' as const, describe: 'grl: grl-onnx\'s layout; ort: what ONNX Runtime\'s training builds run (grl-onnx runs both)' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Artifacts folder' })
      .option('row-sparse-gradients', { type: 'boolean', describe: 'Output embedding tables\' gradients as <param>_grad_rows + <param>_grad_indices instead of a dense <param>_grad (what grl-onnx train uses; TrainingSession reads both)' })
      .option('json', { type: 'boolean', describe: 'Print artifacts.json (the metadata) on stdout' })
      .option('overwrite', { type: 'boolean', describe: 'Replace artifacts already in the output folder' })
      .example('$0 artifacts model.onnx --head pos --loss pos --loss ner:0.5 -o artifacts/', 'GRL on pos, two losses')
      .example('$0 artifacts model.onnx --head pos --loss pos --layout ort -o artifacts/', 'for ONNX Runtime\'s training builds (onnxruntime-web training, C#, C++, Python)') as unknown as Argv<ArtifactsArgs>,
  handler: async (args, io) => {
    const { loadModel } = await import('../../onnx/io');
    const { patchModel } = await import('../../patch/patch');
    const { generateArtifacts, ARTIFACT_FILES } = await import('../../train/artifacts');
    const { RunFolder } = await import('../../train/run-folder');
    // Files are replaced atomically as they are written, so --overwrite removes nothing up front.
    const folder = new RunFolder(args.output, { markers: [ARTIFACT_FILES.metadata, ARTIFACT_FILES.checkpoint], files: [], overwrite: args.overwrite, command: 'grl-onnx artifacts' });
    let model = loadModel(args.model);
    (await import('../../onnx/validate')).assertValidModel(model);
    if (args.head?.length) {
      const patched = patchModel(model, { heads: args.head.map(parseHeadSpec) });
      for (const w of patched.warnings) warn(io, w);
      model = patched.model;
    }
    const { observeUnknownRanks } = await import('../../onnx/shapes');
    const { hints: shapeHints } = await observeUnknownRanks(model);
    folder.claim();
    for (const n of folder.notes) warn(io, n);
    let meta;
    try {
      meta = generateArtifacts(model, {
        shapeHints,
        losses: args.loss.map(parseLossSpec), freeze: args.freeze, trainable: args.trainable, optimizer: args.optimizer, learningRate: args.lr,
        rowSparseGradients: !!args.rowSparseGradients, layout: args.layout,
        hyperparameters: definedOnly({ weightDecay: args.weightDecay, momentum: args.momentum, maxGradNorm: args.gradClip }),
      }, args.output);
    } finally {
      folder.release();
    }
    if (args.json) {
      io.stdout.write(`${JSON.stringify(meta, null, 1)}\n`);
      return;
    }
    const trainable = meta.params.filter((p) => p.trainable);
    const count = (ps: typeof meta.params) => ps.reduce((n, p) => n + p.dims.reduce((a, b) => a * b, 1), 0);
    io.stdout.write(`wrote ${args.output} (${meta.layout} layout): ${Object.values(ARTIFACT_FILES).join(', ')}\n`);
    io.stdout.write(`  losses: ${meta.heads.map((h) => `${h.head} (${h.output}, ${h.kind}, weight ${h.weight}${h.labelInput !== h.head ? `, labels input ${h.labelInput}` : ''})`).join('; ')}\n`);
    io.stdout.write(`  GRLs: ${meta.lambdas.length ? meta.lambdas.map((l) => `${l.head} λ=${Number(l.default.toPrecision(6))} (input ${l.input})`).join('; ') : 'none'}\n`);
    io.stdout.write(`  parameters: ${count(trainable).toLocaleString('en-US')} trainable in ${trainable.length} tensors, ${count(meta.params.filter((p) => !p.trainable)).toLocaleString('en-US')} frozen; optimizer ${meta.optimizer}\n`);
    const rows = Object.keys(meta.outputs.rowGrads ?? {});
    if (rows.length) io.stdout.write(`  row-sparse gradients (<param>_grad_rows + <param>_grad_indices): ${rows.join(', ')}\n`);
  },
};
