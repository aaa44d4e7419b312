// d Split(X) = Concat(dY0..dYn-1, axis). The piece sizes (`split` attribute,
// `split` input from opset 13, `num_outputs` from 18 with an uneven last chunk)
// are already in the outputs' shapes, so one rule serves every opset. An
// output nobody differentiated contributes zeros shaped like that forward
// output: the only place a shape rule materialises zeros.
import { A } from '../../onnx/attrs';
import { shapeOf, zerosOfShape } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Split: RuleEntry = {
  opType: 'Split',
  nonDifferentiable: [1],
  rule: (ctx) => {
    const grads: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
    const nOut = ctx.node.output?.length ?? 0;
    const dys = Array.from({ length: nOut }, (_, k) => ctx.gradOutput(k));
    if (!ctx.needsGrad(0) || dys.every((g) => !g)) return grads;
    if (nOut === 1) {
      grads[0] = dys[0];
      return grads;
    }
    const pieces = dys.map((g, k) => g ?? zerosOfShape(ctx.emit, shapeOf(ctx, ctx.output(k)), `zeros_out${k}`));
    grads[0] = ctx.emit.op('Concat', pieces, { axis: A.int(ctx.attrInt('axis', 0)) }, 'dx');
    return grads;
  },
};
