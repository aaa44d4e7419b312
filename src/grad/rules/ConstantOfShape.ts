// ConstantOfShape: its only input is a shape, and its values come from an
// attribute, so nothing upstream can receive a gradient. Registered so that
// `inspect` does not report it as unsupported; the driver never needs to call it.
import type { RuleEntry } from '../types';

export const ConstantOfShape: RuleEntry = {
  opType: 'ConstantOfShape',
  nonDifferentiable: [0],
  rule: () => [null],
};
