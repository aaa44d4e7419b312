// d Trilu(X, k) = Trilu(dY, k): Trilu multiplies by a constant 0/1 mask, so the
// gradient is the same mask (same `upper`, same k input) applied to dY.
import { A } from '../../onnx/attrs';
import type { RuleEntry } from '../types';

export const Trilu: RuleEntry = {
  opType: 'Trilu',
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    const grads: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
    if (!dy || !ctx.needsGrad(0)) return grads;
    const k = ctx.input(1);
    grads[0] = ctx.emit.op('Trilu', k ? [dy, k] : [dy], { upper: A.int(ctx.attrInt('upper', 1)) }, 'dx');
    return grads;
  },
};
