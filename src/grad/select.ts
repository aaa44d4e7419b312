// Gradient builder: choosing the trainable parameters. `--trainable` and
// `--freeze` patterns (globs with * and ?, or /regex/flags) on initializer
// names narrow the default set (every float initializer on a path to a loss).
import { GrlError } from '../onnx/errors';

export type NamePattern = string;

/** `/re/flags` is a regular expression (searched); anything else a glob matched against the whole name. */
export function compilePattern(p: NamePattern): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(p);
  if (re) {
    try {
      return new RegExp(re[1], re[2].replace(/[gy]/g, '')); // test() must not be stateful
    } catch (e) {
      throw new GrlError(`bad parameter pattern ${p}: ${(e as Error).message}`);
    }
  }
  const body = p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

export interface Selection {
  trainable: Set<string>;
  frozen: Set<string>;
}

/**
 * Split `candidates` (default-trainable names, in order) into trainable and frozen.
 * A pattern that matches none of `known` (every parameter name) is an error: a typo
 * would otherwise silently train (or freeze) everything.
 */
export function selectTrainable(candidates: string[], known: string[], opts: { freeze?: NamePattern[]; trainable?: NamePattern[] }): Selection {
  const check = (flag: string, patterns: NamePattern[] | undefined) =>
    (patterns ?? []).map((p) => {
      const re = compilePattern(p);
      if (!known.some((n) => re.test(n))) throw new GrlError(`--${flag} ${p} matches no parameter (initializer) of the model`);
      return re;
    });
  const keep = check('trainable', opts.trainable);
  const freeze = check('freeze', opts.freeze);
  const trainable = new Set<string>();
  const frozen = new Set<string>();
  for (const n of candidates) {
    const ok = (!keep.length || keep.some((re) => re.test(n))) && !freeze.some((re) => re.test(n));
    (ok ? trainable : frozen).add(n);
  }
  return { trainable, frozen };
}
