// Dropout in inference mode is the identity for the data input. ratio and
// training_mode are not differentiable. A Dropout that may train (training_mode a
// constant true, or computed at run time) would need its mask, so it is refused.
import { nodeError } from '../static-shape';
import type { RuleEntry } from '../types';

export const Dropout: RuleEntry = {
  opType: 'Dropout',
  nonDifferentiable: [1, 2],
  rule: (ctx) => {
    const training = ctx.input(2);
    if (training) {
      const mode = ctx.constInts(2);
      if (!mode) throw nodeError(ctx, `training_mode '${training}' is not a constant; only inference-mode Dropout (identity) has a gradient rule`);
      if (mode.some((v) => v !== 0)) throw nodeError(ctx, 'training_mode is true; only inference-mode Dropout (identity) has a gradient rule, export the model in eval mode');
    }
    return Array.from({ length: ctx.numInputs }, (_, i) => (i === 0 && ctx.needsGrad(0) ? ctx.gradOutput(0) : null));
  },
};
