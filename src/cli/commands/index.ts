// CLI: the explicit list of commands. Adding one = a file in this folder with
// command/describe/builder/handler, one import and one line below. Keep
// imports here light: handlers load the heavy modules lazily so --help is fast.
import type { GrlCommand } from '../command';
import { inspectCommand } from './inspect';
import { patchCommand } from './patch';
import { headsCommand } from './heads';
import { trainCommand } from './train';
import { artifactsCommand } from './artifacts';
import { probeCommand } from './probe';
import { experimentCommand } from './experiment';
import { dataCommand } from './data';
import { eraseCommand } from './erase';

export const COMMANDS: GrlCommand[] = [
  inspectCommand,
  patchCommand,
  headsCommand,
  artifactsCommand,
  trainCommand,
  probeCommand,
  experimentCommand,
  dataCommand,
  eraseCommand,
];
