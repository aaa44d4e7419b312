// CLI command `grl-onnx data prepare`: a corpus (CoNLL-U, CoNLL/IOB, word/TAG,
// JSONL with words, plain text) through a tokenizer.json into the ids JSONL that
// train and probe read, plus OUT.labels.json, the label vocabulary. Everything is
// read and checked before anything is written; both files are written atomically
// and never over an input.
import type { Argv } from 'yargs';
import { GrlError } from '../../onnx/errors';
import { GrlCommand, repeatable, warn } from '../command';
import type { FormatName } from '../../data/formats';

interface DataArgs {
  action: 'prepare';
  file: string;
  tokenizer: string;
  label?: string[];
  format?: FormatName;
  labelsFrom?: string;
  labelOrder: 'sorted' | 'first-seen';
  labelAllSubwords?: boolean;
  maxLength?: number;
  model?: string;
  strictLabels?: boolean;
  out: string;
}

/** OUT.jsonl → OUT.labels.json. */
export function labelsPath(out: string): string {
  return `${out.replace(/\.jsonl?$/i, '')}.labels.json`;
}

export const dataCommand: GrlCommand<DataArgs> = {
  command: 'data <action> <file>',
  describe: 'Prepare a corpus (CoNLL-U, CoNLL, word/TAG, JSONL words, text) into ids JSONL with a tokenizer.json',
  builder: (y: Argv) =>
    y
      .positional('action', { choices: ['prepare'] as const, describe: 'prepare: corpus → ids JSONL + OUT.labels.json' })
      .positional('file', { type: 'string', demandOption: true, describe: 'Corpus file' })
      .option('tokenizer', { type: 'string', demandOption: true, describe: 'Hugging Face tokenizer.json' })
      .option('label', { type: 'string', coerce: repeatable, describe: 'NAME=COLUMN, repeatable: pos=upos, ner=3, pos=tag, topic=label' })
      .option('format', { choices: ['conllu', 'conll', 'wordtag', 'jsonl', 'text'] as const, describe: 'Corpus format (default: from the extension or the first line)' })
      .option('labels-from', { type: 'string', describe: 'Use this label vocabulary (the training OUT.labels.json) instead of building one' })
      .option('label-order', { choices: ['sorted', 'first-seen'] as const, default: 'sorted' as const, describe: 'Order of a label vocabulary built from this file' })
      .option('label-all-subwords', { type: 'boolean', describe: 'Every subword gets its word\'s label (default: the first; others -100)' })
      .option('max-length', { type: 'number', describe: 'Truncate sequences to N tokens, special tokens included' })
      .option('model', { type: 'string', describe: 'Truncate to this model\'s sequence limit (its position table)' })
      .option('strict-labels', { type: 'boolean', describe: 'A label missing from --labels-from is an error (default: -100 and a warning)' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output ids JSONL (the vocabulary goes to OUT.labels.json)' })
      .example('$0 data prepare train.conllu --tokenizer tokenizer.json --label pos=upos -o train.jsonl', 'UPOS tags for a token head named pos')
      .example('$0 data prepare dev.conllu --tokenizer tokenizer.json --label pos=upos --labels-from train.labels.json -o dev.jsonl', 'dev data with the training labels') as unknown as Argv<DataArgs>,
  handler: async (args, io) => {
    const { loadTokenizer } = await import('../../tokenize/tokenizer');
    const { prepareCorpus, preparedJsonl, parseLabelRequest } = await import('../../data/prepare');
    const { readLabelVocab, requireLabels } = await import('../../data/labels');
    const { sameFile, writeFileAtomic } = await import('../../onnx/io');
    const labels = (args.label ?? []).map(parseLabelRequest);
    const dup = labels.find((l, i) => labels.findIndex((m) => m.name === l.name) !== i);
    if (dup) throw new GrlError(`--label ${dup.name}: given twice`);
    if (!labels.length && args.format !== 'text') throw new GrlError('give at least one --label NAME=COLUMN (or --format text for unlabelled text)');
    const labelsOut = labelsPath(args.out);
    for (const input of [args.file, args.tokenizer, args.labelsFrom, args.model]) {
      if (input && (sameFile(input, args.out) || sameFile(input, labelsOut))) throw new GrlError(`${input}: is an input; it would be overwritten by the output (${sameFile(input, args.out) ? args.out : labelsOut})`);
    }
    if (args.maxLength !== undefined && !(Number.isInteger(args.maxLength) && args.maxLength > 0)) throw new GrlError('--max-length must be a positive integer');
    let maxLength = args.maxLength;
    if (args.model) {
      const { loadModel } = await import('../../onnx/io');
      const { sequenceLimit } = await import('../../onnx/limits');
      const lim = sequenceLimit(loadModel(args.model));
      if (!lim) throw new GrlError(`${args.model}: no sequence limit found (no position table or static sequence dim); give --max-length`);
      maxLength = Math.min(maxLength ?? Infinity, lim.limit);
    }
    const p = prepareCorpus(args.file, {
      tokenizer: loadTokenizer(args.tokenizer),
      labels,
      format: args.format,
      labelsFrom: args.labelsFrom ? requireLabels(readLabelVocab(args.labelsFrom), labels.map((l) => l.name), args.labelsFrom) : undefined,
      labelOrder: args.labelOrder,
      labelAllSubwords: args.labelAllSubwords,
      maxLength,
      strictLabels: args.strictLabels,
    });
    for (const w of p.warnings) warn(io, w);
    writeFileAtomic(labelsOut, `${JSON.stringify(p.vocab, null, 1)}\n`);
    writeFileAtomic(args.out, preparedJsonl(p));
    const s = p.stats;
    const vocab = Object.entries(p.vocab).map(([k, v]) => `${k} ${v.length}`).join(', ');
    io.stdout.write(`${args.out}: ${s.sentences} sentences (${p.format}), ${s.words} words → ${s.tokens} tokens, longest ${s.longest}${maxLength !== undefined ? ` (max ${maxLength})` : ''}\n`);
    io.stdout.write(`${labelsOut}: ${vocab ? `${vocab} labels` : 'no labels'}${args.labelsFrom ? ` (from ${args.labelsFrom})` : ` (${args.labelOrder})`}\n`);
  },
};
