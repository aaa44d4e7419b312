// Experiment: which experiment a config file asks for. `erasure` (the default:
// removal methods side by side on the pretrained encoder) or `tagger` (GRL on a
// tagger that carries its own heads, the first experiment: configs/tagger.json).
// A config without `kind` that has the tagger's keys is a tagger config, so
// files written before erasure existed keep working.
import { GrlError } from '../onnx/errors';

export type ExperimentKind = 'erasure' | 'tagger';

export function experimentKind(file: Record<string, unknown> | undefined, where = 'config'): ExperimentKind {
  if (!file) return 'erasure';
  const k = file.kind;
  if (k === 'erasure' || k === 'tagger') return k;
  if (k !== undefined) throw new GrlError(`${where}: unknown experiment kind ${JSON.stringify(k)} (expected "erasure" or "tagger")`);
  return 'adversary' in file || 'amnesic' in file ? 'tagger' : 'erasure';
}

/** The file without its `kind` key (the tagger config has none). */
export function withoutKind<T extends Record<string, unknown>>(file: T): Omit<T, 'kind'> {
  const { kind: _kind, ...rest } = file;
  return rest;
}
