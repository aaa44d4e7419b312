// CLI: the corpus options `train`, `probe` and `experiment` share (--tokenizer,
// --label NAME=COLUMN, --format, ...), turned into the CorpusOptions of
// src/data/examples.ts. Without --tokenizer the data is ids JSONL, as before.
import type { Argv } from 'yargs';
import { GrlError } from '../onnx/errors';
import { CliIO, repeatable, warn } from './command';
import type { CorpusOptions } from '../data/examples';
import type { FormatName } from '../data/formats';

export interface CorpusArgs {
  tokenizer?: string;
  label?: string[];
  format?: FormatName;
  labelsFrom?: string;
  labelAllSubwords?: boolean;
  maxLength?: number;
  strictLabels?: boolean;
}

/** Add the corpus options; `label: false` for commands whose --label means something else (probe). */
export function withCorpusOptions<T>(y: Argv<T>, opts: { label: boolean }): Argv<T> {
  let out = y
    .option('tokenizer', { type: 'string', describe: 'tokenizer.json: read --data/--eval as corpora (CoNLL-U, CoNLL, word/TAG, JSONL words) and tokenize in memory' })
    .option('format', { choices: ['conllu', 'conll', 'wordtag', 'jsonl', 'text'] as const, describe: 'Corpus format (with --tokenizer; default: from the extension or first line)' })
    .option('labels-from', { type: 'string', describe: 'Label vocabulary (labels.json from data prepare; default: built from --data)' })
    .option('label-all-subwords', { type: 'boolean', describe: 'Every subword gets its word\'s label (default: the first)' })
    .option('max-length', { type: 'number', describe: 'Truncate corpus sentences to N tokens (default: the model\'s position table)' })
    .option('strict-labels', { type: 'boolean', describe: 'A dev label missing from the training vocabulary is an error' }) as unknown as Argv<T>;
  if (opts.label) out = out.option('label', { type: 'string', coerce: repeatable, describe: 'NAME=COLUMN with --tokenizer: labels for head NAME (pos=upos, ner=3; repeatable)' }) as unknown as Argv<T>;
  return out;
}

/** CorpusOptions from the parsed flags, or undefined without --tokenizer. */
export function corpusFromArgs(args: CorpusArgs, io: CliIO, labels = args.label ?? []): CorpusOptions | undefined {
  if (!args.tokenizer) {
    const stray = (['format', 'labelsFrom', 'labelAllSubwords', 'maxLength', 'strictLabels'] as const).find((k) => args[k] !== undefined);
    if (stray || args.label?.length) throw new GrlError(`--${stray ? stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) : 'label'} needs --tokenizer (the data is read as a corpus only with a tokenizer)`);
    return undefined;
  }
  if (args.maxLength !== undefined && !(Number.isInteger(args.maxLength) && args.maxLength > 0)) throw new GrlError('--max-length must be a positive integer');
  return {
    tokenizer: args.tokenizer, labels, format: args.format, labelsFrom: args.labelsFrom, labelAllSubwords: args.labelAllSubwords,
    maxLength: args.maxLength, strictLabels: args.strictLabels, onWarning: (m) => warn(io, m),
  };
}
