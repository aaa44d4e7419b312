// CLI command `grl-onnx inspect`: print the report of src/inspect/inspect.ts,
// as text or (--json) as one JSON document on stdout.
import type { Argv } from 'yargs';
import { GrlCommand, stdioArg } from '../command';

interface InspectArgs {
  model: string;
  json?: boolean;
}

export const inspectCommand: GrlCommand<InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Show inputs, outputs, heads and splice points, GRLs, parameters, ops and warnings',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: "ONNX model file, or '-' for stdin", coerce: stdioArg })
      .option('json', { type: 'boolean', describe: 'Print the report as one JSON document' }) as unknown as Argv<InspectArgs>,
  handler: async (args, io) => {
    const { loadModel } = await import('../../onnx/io');
    const { inspectModel } = await import('../../inspect/inspect');
    const { formatInspectReport } = await import('../../inspect/format');
    const model = args.model === '-' && io.readStdin ? loadModel(io.readStdin(), { name: '<stdin>', baseDir: process.cwd() }) : loadModel(args.model);
    let report;
    try {
      const { observeUnknownRanks } = await import('../../onnx/shapes');
      report = inspectModel(model, await observeUnknownRanks(model));
    } catch (e) {
      // A model too broken to analyse (or to run for its ranks): its checker findings are the report.
      const { validateModel, findingText } = await import('../../onnx/validate');
      const problems = validateModel(model).map(findingText);
      if (!problems.length) throw e;
      io.stdout.write(args.json ? `${JSON.stringify({ file: model.source, problems }, null, 2)}\n` : `${model.source}\n  problems (${problems.length}; patch, artifacts and train refuse this model):\n${problems.map((p) => `    - ${p}\n`).join('')}`);
      return;
    }
    io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspectReport(report));
  },
};
