// d GradientReversal(X, λ) / dX = −λ · dY. The training builder rewrites each
// GRL node to read λ from a graph input (its second input), so schedules can
// change λ every step; λ itself gets no gradient.
import { GRL_DOMAIN, GRL_OP } from '../../patch/grl';
import { GraphError } from '../../onnx/errors';
import type { RuleEntry } from '../types';

export const GradientReversal: RuleEntry = {
  opType: GRL_OP,
  domain: GRL_DOMAIN,
  nonDifferentiable: [1],
  rule: (ctx) => {
    const dy = ctx.gradOutput(0);
    if (!dy || !ctx.needsGrad(0)) return [null, null];
    const lambda = ctx.input(1);
    if (!lambda) throw new GraphError(`GradientReversal node '${ctx.node.name}' has no λ input (buildTrainingGraph adds it)`);
    const negLambda = ctx.emit.op('Neg', [lambda], undefined, 'neg_lambda');
    return [ctx.emit.op('Mul', [dy, negLambda], undefined, 'reversed'), null];
  },
};
