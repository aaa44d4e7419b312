// Test helper: run the CLI in-process and capture its exit code, stdout and stderr.
import { runCli } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/command';

export interface CliRun { code: number; stdout: string; stderr: string }

export async function cli(args: string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (c) => (out += c.toString()) }, stderr: { write: (s) => (err += s) } };
  const code = await runCli(args, io);
  return { code, stdout: out, stderr: err };
}
