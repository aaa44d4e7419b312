// d Unsqueeze(X) = Reshape(dY, Shape(X)): the data is unchanged, only its shape;
// axes are an attribute before opset 13 and input 1 from 13; either way the
// shape of X says everything, so one rule serves every opset.
import { reshapeToInput } from '../shapeOps';
import type { RuleEntry } from '../types';

export const Unsqueeze: RuleEntry = {
  opType: 'Unsqueeze',
  rule: reshapeToInput,
  nonDifferentiable: [1],
};
