// d Identity(X) = dY, passed through without a node.
import type { RuleEntry } from '../types';

export const Identity: RuleEntry = {
  opType: 'Identity',
  rule: (ctx) => [ctx.needsGrad(0) ? ctx.gradOutput(0) : null],
};
