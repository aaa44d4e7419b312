// CLI: the contract between src/cli/main.ts and the command modules in
// src/cli/commands/. Handlers get their I/O injected so tests can run the
// whole CLI in-process through a fresh yargs instance.
import type { Argv, ArgumentsCamelCase } from 'yargs';

export interface CliIO {
  stdout: { write(chunk: string | Uint8Array): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown };
  /** All of stdin, for MODEL = '-' (default: read file descriptor 0). */
  readStdin?: () => Buffer;
  /** A handler that finishes without an error but wants a non-zero exit (e.g. 130 after Ctrl-C) sets this. */
  exitCode?: number;
}

/** One command per file: `command`, `describe`, `builder`, `handler` (yargs' module shape plus injected I/O). */
export interface GrlCommand<A = any> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (argv: ArgumentsCamelCase<A>, io: CliIO) => Promise<void> | void;
}

/**
 * yargs re-parses positionals as flags, which turns a lone '-' into `true` or ''. main.ts
 * swaps '-' for this placeholder before parsing; options that accept '-' coerce it back.
 */
export const STDIO_ARG = '<stdio>';

export function stdioArg(v: unknown): string {
  return v === STDIO_ARG ? '-' : String(v);
}

/** Print a warning the library returned (library code never prints). */
export function warn(io: CliIO, message: string): void {
  io.stderr.write(`grl-onnx: warning: ${message}\n`);
}

/**
 * For repeatable string options (`--loss pos --loss ner`). Not yargs' `array: true`, which
 * would also swallow a positional MODEL given after the option.
 */
export function repeatable(v: string | string[]): string[] {
  return ([] as string[]).concat(v);
}
