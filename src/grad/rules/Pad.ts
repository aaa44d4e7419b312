// d Pad(X, pads, value) in constant mode: dX = Pad(dY, -pads). Positive pads
// added border cells, which the gradient crops; negative pads cropped X, and
// those cells get zeros. d value = sum(dY) - sum(dX): the cells the value
// filled. From opset 18 an `axes` input names the padded axes; our Pad must
// stay valid at 16, so such pads are scattered into a full-rank vector.
// Opsets 1-10 (pads as an attribute) and reflect/edge/wrap modes are refused.
import { A } from '../../onnx/attrs';
import { GrlError } from '../../onnx/errors';
import { asInt64, int64Fill, rankTensor, shapeOf, wrapNegative } from '../shapeOps';
import type { RuleContext, RuleEntry } from '../types';

function negatedPads(ctx: RuleContext): string {
  const { emit } = ctx;
  const pads = ctx.constInts(1);
  const axesGiven = ctx.opset >= 18 && !!ctx.input(3);
  if (pads && !axesGiven) return emit.int64s(pads.map((p) => -p), 'pads');
  let full = ctx.input(1);
  if (axesGiven) {
    const rank = rankTensor(ctx, ctx.input(0));
    const axes = wrapNegative(emit, asInt64(emit, ctx.input(3), 'axes_i64'), rank, 'axes');
    const slots = emit.op('Concat', [axes, emit.op('Add', [axes, rank], undefined, 'end_slots')], { axis: A.int(0) }, 'slots');
    const none = int64Fill(emit, emit.op('Mul', [rank, emit.int64s([2], 'two')], undefined, 'num_pads'), 0, 'no_pads');
    full = emit.op('ScatterElements', [none, slots, ctx.input(1)], { axis: A.int(0) }, 'full_pads');
  }
  return emit.op('Neg', [full], undefined, 'pads');
}

export const Pad: RuleEntry = {
  opType: 'Pad',
  minOpset: 11,
  nonDifferentiable: [1, 3],
  rule: (ctx) => {
    const grads: (string | null)[] = Array.from({ length: ctx.numInputs }, () => null);
    const dy = ctx.gradOutput(0);
    const wantX = ctx.needsGrad(0);
    const wantValue = ctx.needsGrad(2);
    if (!dy || (!wantX && !wantValue)) return grads;
    if (ctx.opset < 11) {
      // Training graphs import opset >= 16, where an attribute-style Pad is not even valid.
      throw new GrlError(`Pad node '${ctx.node.name}': opset ${ctx.opset} Pad (pads as an attribute) has no gradient rule; opset 11+ is supported`);
    }
    const mode = ctx.attrString('mode', 'constant');
    if (mode !== 'constant') {
      throw new GrlError(`Pad node '${ctx.node.name}': no gradient for mode '${mode}' (only 'constant' is supported)`);
    }
    const { emit } = ctx;
    const dx = emit.op('Pad', [dy, negatedPads(ctx)], { mode: A.string('constant') }, 'dx');
    if (wantX) grads[0] = dx;
    if (wantValue) {
      const all = emit.op('ReduceSum', [dy], { keepdims: A.int(0) }, 'sum_dy');
      const inside = emit.op('ReduceSum', [dx], { keepdims: A.int(0) }, 'sum_dx');
      const filled = emit.op('Sub', [all, inside], undefined, 'sum_filled');
      grads[2] = emit.reshape(filled, shapeOf(ctx, ctx.input(2)), 'dvalue');
    }
    return grads;
  },
};
