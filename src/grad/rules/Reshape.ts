// d Reshape(X) = Reshape(dY, Shape(X)): the data is unchanged, only its shape;
// the target shape (input 1) is not differentiable.
import { reshapeToInput } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Reshape: RuleEntry = {
  opType: 'Reshape',
  rule: reshapeToInput,
  nonDifferentiable: [1],
};
