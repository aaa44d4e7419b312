// Gradient builder: the explicit list of gradient rules, one file per op.
// Adding a rule = one import and one line in RULES. Duplicates are refused.
import type { RuleEntry } from '../types';
import { Add } from './Add';

const RULES: RuleEntry[] = [
  Add,
];

const TABLE = new Map<string, RuleEntry>();
for (const r of RULES) {
  const key = `${r.domain ?? ''}::${r.opType}`;
  if (TABLE.has(key)) throw new Error(`gradient rule for ${key} is registered twice`);
  TABLE.set(key, r);
}

export function findRule(opType: string, domain = ''): RuleEntry | undefined {
  return TABLE.get(`${domain === 'ai.onnx' ? '' : domain}::${opType}`);
}

/** Every op with a rule, as `domain::Op` ('' for the default domain). */
export function supportedOps(): string[] {
  return [...TABLE.keys()].sort();
}
