// d Flatten(X) = Reshape(dY, Shape(X)): the data is unchanged, only its shape;
// axis is an attribute.
import { reshapeToInput } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Flatten: RuleEntry = {
  opType: 'Flatten',
  rule: reshapeToInput,
};
