// Constant: no inputs, so there is nothing to differentiate. Registered so that
// `inspect` does not report it as unsupported.
import type { RuleEntry } from '../types';

export const Constant: RuleEntry = {
  opType: 'Constant',
  rule: () => [],
};
