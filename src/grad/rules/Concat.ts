// d Concat(X0..Xn-1, axis): dY is split back along `axis` into pieces as wide as
// each input (sizes from Shape(Xi) at that axis; Split accepts a negative axis).
import { A } from '../../onnx/attrs';
import { dimAt } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Concat: RuleEntry = {
  opType: 'Concat',
  rule: (ctx) => {
    const n = ctx.numInputs;
    const wanted = Array.from({ length: n }, (_, i) => ctx.needsGrad(i));
    const dy = ctx.gradOutput(0);
    if (!dy || !wanted.some(Boolean)) return wanted.map(() => null);
    if (n === 1) return [dy];
    const axis = ctx.attrInt('axis', 0);
    const sizes = ctx.emit.op('Concat', Array.from({ length: n }, (_, i) => dimAt(ctx, ctx.input(i), axis)), { axis: A.int(0) }, 'sizes');
    const parts = ctx.emit.opN('Split', [dy, sizes], n, { axis: A.int(axis) }, 'dx');
    return parts.map((p, i) => (wanted[i] ? p : null));
  },
};
