// CLI entry point: builds the yargs parser from the command modules and turns
// errors into one line on stderr plus an exit code. `main` is what
// bin/grl-onnx.js calls; `runCli`/`buildCli` let tests run the CLI in-process.
import yargs, { Argv } from 'yargs';
import { GrlError } from '../onnx/errors';
import { explainOrtError } from '../onnx/ort-errors';
import { packageVersion } from '../version';
import { COMMANDS } from './commands';
import { CliIO, STDIO_ARG } from './command';

export type { CliIO } from './command';

/** Bad command-line usage (unknown option, missing argument). */
export class UsageError extends GrlError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** A fresh parser: never exits the process, and parse failures reject instead of printing. */
export function buildCli(io: CliIO): Argv {
  let y = yargs()
    .scriptName('grl-onnx')
    .usage('$0 <command> [options]\n\nGradient-reversal (adversarial / amnesic) multi-task models from exported ONNX transformers.')
    .exitProcess(false)
    .strict()
    .demandCommand(1, 'give a command')
    .recommendCommands()
    .option('debug', { type: 'boolean', global: true, describe: 'Show stack traces on errors' })
    .version(packageVersion())
    .help()
    .wrap(Math.min(100, (io.stdout as { columns?: number }).columns ?? 100))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  for (const c of COMMANDS) {
    y = y.command({ command: c.command, describe: c.describe, builder: c.builder, handler: (argv) => c.handler(argv, io) });
  }
  // A '-' that no option turned back into stdin/stdout (stdioArg) would otherwise be used
  // as a file literally named '<stdio>'.
  y = y.middleware((argv) => {
    const cmd = COMMANDS.find((c) => c.command.split(' ')[0] === argv._[0])?.command ?? '';
    // Long names first (an alias holds the same value).
    const keys = Object.keys(argv).filter((k) => k !== '$0' && k !== '_' && !/[A-Z]/.test(k)).sort((a, b) => b.length - a.length);
    for (const key of keys) {
      const v = argv[key];
      if (v !== STDIO_ARG && !(Array.isArray(v) && v.includes(STDIO_ARG))) continue;
      const positional = cmd.includes(`<${key}>`) || cmd.includes(`[${key}]`);
      throw new UsageError(`${positional ? key.toUpperCase() : `--${key}`} '-': stdin/stdout is not supported here; give a file`);
    }
  });
  return y;
}

/** Run the CLI; resolves to the exit code. Never throws and never exits the process. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  let output = '';
  // onnxruntime's own log stays quiet unless asked for (its errors arrive as exceptions).
  const ortLog = argv.includes('--debug') ? await import('../onnx/ort') : undefined;
  ortLog?.setOrtLogging(true);
  try {
    const args = argv.map((a) => (a === '-' ? STDIO_ARG : a));
    await buildCli(io).parseAsync(args, {}, (_err, _args, out) => {
      output = out;
    });
    if (output) io.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
    return io.exitCode ?? 0;
  } catch (e) {
    return reportError(e, io, argv.includes('--debug'), argv);
  } finally {
    ortLog?.setOrtLogging(false);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

function reportError(e: unknown, io: CliIO, debug: boolean, argv: string[]): number {
  const err = explainOrtError(e) ?? (e instanceof Error ? e : new Error(String(e)));
  if (err instanceof UsageError) {
    const cmd = COMMANDS.find((c) => c.command.split(' ')[0] === argv[0]);
    io.stderr.write(`grl-onnx: ${oneLine(err.message)} (see 'grl-onnx ${cmd ? `${argv[0]} ` : ''}--help')\n`);
  } else if (err instanceof GrlError) {
    io.stderr.write(`grl-onnx: ${oneLine(err.message)}\n`);
  } else {
    io.stderr.write(`grl-onnx: unexpected error: ${oneLine(err.message)}${debug ? '' : ' (rerun with --debug for the stack trace)'}\n`);
  }
  if (debug) {
    io.stderr.write(`${err.stack ?? ''}\n`);
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) io.stderr.write(`caused by: ${cause.stack ?? cause.message}\n`);
  }
  return err instanceof GrlError ? err.exitCode : 1;
}

/** The process entry point: sets process.exitCode (so piped stdout flushes) instead of exiting. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // The reader went away (`grl-onnx inspect m.onnx | head`): not our error.
    if (e.code === 'EPIPE') process.exitCode ??= 0;
  });
  process.exitCode = await runCli(argv, { stdout: process.stdout, stderr: process.stderr });
}
