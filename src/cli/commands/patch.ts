// CLI command `grl-onnx patch`: splice (or remove) gradient-reversal layers.
// Thin: parses head specs and decides where the model goes; the work is in
// src/patch/patch.ts. Nothing is written unless loading and patching succeed.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { CliIO, GrlCommand, repeatable, stdioArg, warn } from '../command';
import type { HeadSpec } from '../../patch/patch';

interface PatchArgs {
  model: string;
  head?: string[];
  lambda?: number;
  at?: string;
  output?: string;
  remove?: boolean;
  inPlace?: boolean;
  externalData?: boolean;
  json?: boolean;
}

/** `pos` or `pos:0.5`. A suffix that is not a number stays part of the name (`onnx::Add_3`). */
export function parseHeadSpec(spec: string): HeadSpec {
  const k = spec.lastIndexOf(':');
  if (k <= 0) return { name: spec };
  const name = spec.slice(0, k);
  const value = spec.slice(k + 1);
  if (!/^[-+]?(\d|\.\d|inf|nan)/i.test(value)) return { name: spec };
  const lambda = Number(value);
  if (!Number.isFinite(lambda)) throw new GrlError(`--head ${spec}: λ must be a finite number, got '${value}'`);
  return { name, lambda };
}

/** Where the patched model goes: a path, or '-' for stdout. */
function destination(args: PatchArgs, io: CliIO): string {
  if (args.output !== undefined) return args.output;
  if (args.inPlace) {
    if (args.model === '-') throw new GrlError('--in-place needs a model file, not stdin');
    return args.model;
  }
  if (io.stdout.isTTY) throw new GrlError(`${args.model}: stdout is a terminal; give -o OUT for the patched model (or -o - to write it there anyway)`);
  return '-';
}

export const patchCommand: GrlCommand<PatchArgs> = {
  command: 'patch <model>',
  describe: 'Splice a gradient-reversal layer (GRL) between the shared trunk and each named head',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: "ONNX model file, or '-' for stdin", coerce: stdioArg })
      .option('head', { type: 'string', coerce: repeatable, describe: 'Head to patch: NAME or NAME:LAMBDA (repeatable). NAME is an output, pos for pos_logits, or a module scope' })
      .option('lambda', { type: 'number', describe: 'λ for heads given without one (default 1; negative = ordinary gradient, with a warning)' })
      .option('at', { type: 'string', describe: 'Splice at this tensor instead of where the head leaves the trunk (one head)' })
      .option('output', { alias: 'o', type: 'string', coerce: stdioArg, describe: "Output file, '-' for stdout (default: stdout when it is not a terminal)" })
      .option('remove', { type: 'boolean', describe: 'Remove the GRLs of the named heads (all GRLs without --head)' })
      .option('in-place', { type: 'boolean', describe: 'Allow overwriting the input model' })
      .option('external-data', { type: 'boolean', describe: 'Store large initializers in OUT.data next to the output' })
      .option('json', { type: 'boolean', describe: 'Print a JSON report of what changed on stdout (needs -o FILE)' })
      .example('$0 patch model.onnx --head pos -o patched.onnx', 'reverse the gradient of head pos with λ=1')
      .example('cat m.onnx | $0 patch - --head pos:0.5 > p.onnx', 'as a pipeline step') as unknown as Argv<PatchArgs>,
  handler: async (args, io) => {
    const heads = (args.head ?? []).map(parseHeadSpec);
    if (args.lambda !== undefined && !Number.isFinite(args.lambda)) throw new GrlError('--lambda must be a finite number');
    if (!args.remove && !heads.length) throw new GrlError(`${args.model}: give at least one --head NAME (or --remove)`);
    const dest = destination(args, io);
    if (args.json && dest === '-') throw new GrlError('--json prints its report on stdout; give -o FILE for the model');

    const { loadModel, saveModel } = await import('../../onnx/io');
    const { patchModel } = await import('../../patch/patch');
    const model = args.model === '-' && io.readStdin ? loadModel(io.readStdin(), { name: '<stdin>', baseDir: process.cwd() }) : loadModel(args.model);
    const { assertValidModel } = await import('../../onnx/validate');
    assertValidModel(model);
    const result = patchModel(model, { heads, lambda: args.lambda, at: args.at, remove: args.remove });
    saveModel(result.model, dest, {
      protect: args.inPlace ? [] : [args.model],
      protectHint: 'use --in-place to allow it',
      externalData: args.externalData,
      stdout: (chunk) => io.stdout.write(chunk),
    });

    for (const w of result.warnings) warn(io, w);
    if (args.json) {
      io.stdout.write(`${JSON.stringify({ input: model.source, output: dest, heads: result.heads, warnings: result.warnings }, null, 2)}\n`);
      return;
    }
    for (const h of result.heads) {
      const what = h.action === 'removed' ? `removed GRL '${h.grlNode}'` : `${h.action} GRL '${h.grlNode}' λ=${h.lambda} at '${h.spliceTensor}'`;
      io.stderr.write(`${h.head} (${h.output}): ${what}\n`);
    }
    if (!result.heads.length) io.stderr.write('no GRL changed\n');
    if (dest !== '-') io.stderr.write(`wrote ${dest}\n`);
  },
};
