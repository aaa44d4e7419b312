// d Transpose(X, perm) = Transpose(dY, inverse(perm)); without perm the axes are
// reversed, which is its own inverse.
import { A } from '../../onnx/attrs';
import type { RuleEntry } from '../types';

export const Transpose: RuleEntry = {
  opType: 'Transpose',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null];
    const perm = ctx.attrInts('perm');
    if (!perm) return [ctx.emit.op('Transpose', [dy], undefined, 'dx')];
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => { inverse[p < 0 ? p + perm.length : p] = i; });
    return [ctx.emit.op('Transpose', [dy], { perm: A.ints(inverse) }, 'dx')];
  },
};
