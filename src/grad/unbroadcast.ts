// Gradient builder: the one helper that sums a gradient over broadcast axes
// and reshapes it back to the input's shape (numpy-style multidirectional
// broadcasting, ONNX Broadcasting.md). Static when both shapes are known,
// otherwise computed in-graph from Shape() so any batch/sequence size works.
import { A } from '../onnx/attrs';
import { Emitter } from './emit';

/** Reduce `grad` (shaped like the broadcast result) to the shape of `target`. */
export function unbroadcast(emit: Emitter, grad: string, target: string): string {
  const gs = emit.shapeOf(grad);
  const ts = emit.shapeOf(target);
  if (gs && ts && gs.every((d) => d !== null) && ts.every((d) => d !== null)) {
    const lead = gs.length - ts.length;
    if (lead < 0) return dynamic(emit, grad, target);
    const axes: number[] = [];
    let exact = true;
    for (let k = 0; k < gs.length; k++) {
      if (k < lead) { axes.push(k); continue; }
      const t = ts[k - lead];
      const g = gs[k];
      if (t === g) continue;
      if (t === 1) axes.push(k);
      else exact = false; // symbolic dims that differ by name: we cannot tell statically
    }
    if (exact) {
      if (axes.length === 0) return grad;
      // Sum leading axes away (keepdims=0 would also drop the size-1 axes, so reshape after).
      const summed = emit.reduceSum(grad, axes, true, 'unbroadcast');
      if (lead === 0) return summed;
      if (ts.every((d) => typeof d === 'number')) return emit.reshape(summed, emit.int64s(ts as number[], 'shape'), 'unbroadcast');
      return emit.reshape(summed, emit.shape(target), 'unbroadcast');
    }
  }
  return dynamic(emit, grad, target);
}

/**
 * axes = where (target's shape, left-padded with 1s) is 1 and grad's is not, plus the
 * leading axes; ReduceSum(keepdims=1, noop_with_empty_axes=1) then Reshape to target.
 */
function dynamic(emit: Emitter, grad: string, target: string): string {
  const gShape = emit.shape(grad);
  const tShape = emit.shape(target);
  const gRank = emit.op('Shape', [gShape], undefined, 'grad_rank');
  const tRank = emit.op('Shape', [tShape], undefined, 'target_rank');
  const padLen = emit.op('Sub', [gRank, tRank], undefined, 'pad_len');
  const ones = emit.op('ConstantOfShape', [padLen], { value: A.tensor({ name: 'one', data_type: 7, dims: [1], raw_data: new Uint8Array(BigInt64Array.of(1n).buffer) }) }, 'pad_ones');
  const padded = emit.op('Concat', [ones, tShape], { axis: A.int(0) }, 'target_shape_padded');
  const one = emit.int64s([1], 'one');
  const targetIsOne = emit.op('Equal', [padded, one], undefined, 'target_is_one');
  const gradIsOne = emit.op('Equal', [gShape, one], undefined, 'grad_is_one');
  const reduce = emit.op('And', [targetIsOne, emit.op('Not', [gradIsOne], undefined, 'grad_not_one')], undefined, 'reduce_mask');
  const axes2d = emit.op('NonZero', [reduce], undefined, 'reduce_axes_2d');
  const axes = emit.reshape(axes2d, emit.int64s([-1], 'flat'), 'reduce_axes');
  const summed = emit.reduceSum(grad, axes, true, 'unbroadcast');
  return emit.reshape(summed, tShape, 'unbroadcast');
}
