// Cast between float types: the gradient is cast back to the input's type (CastLike,
// so the rule needs no type information). A cast to an integer or bool type cuts the
// gradient (indices, masks); the driver never asks for gradients of integer inputs.
import { isFloatType } from '../../onnx/tensor';
import type { RuleEntry } from '../types';

export const Cast: RuleEntry = {
  opType: 'Cast',
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0) || !isFloatType(ctx.attrInt('to', 0))) return [null];
    return [ctx.emit.op('CastLike', [dy, ctx.input(0)], undefined, 'dx')];
  },
};
