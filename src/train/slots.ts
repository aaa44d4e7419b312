// Training: where each trainable parameter lives in a TrainingSession's flat buffers, in
// ONNX Runtime's order (the training model's input order), and which training-graph
// output(s) its gradient comes from (dense `<param>_grad`, or row-sparse rows + indices).
import type { RowGradientOutputs } from '../grad/training';
import type { TensorPayload } from './checkpoint';

/** What placing a parameter needs of a checkpoint tensor. */
type TensorMeta = Pick<TensorPayload, 'name' | 'dims' | 'length'>;
import { RowTarget } from './rows';

export interface ParamSlot {
  name: string;
  /** Its gradient output in the training graph. */
  grad: string;
  dims: number[];
  offset: number;
  size: number;
  /** Set when the graph outputs this gradient row-sparse (an embedding table). */
  rows?: RowSlot;
}

export interface RowSlot extends RowTarget {
  outputs: RowGradientOutputs;
  /** Indices written since the gradients were last reset: the only rows that may be non-zero. */
  written: BigInt64Array[];
}

/**
 * Trainable parameters in the training model's input order, whatever order the checkpoint
 * lists them in (ORT writes them sorted by name): ORT's getContiguousParameters and
 * loadParametersBuffer use that order, so buffers move between the two runtimes.
 */
export function inTrainingInputOrder<T extends { name: string }>(trainable: T[], inputNames: readonly string[]): T[] {
  const at = new Map(inputNames.map((n, i) => [n, i]));
  const rank = (t: T) => at.get(t.name) ?? Infinity;
  return [...trainable].sort((a, b) => rank(a) - rank(b));
}

/** Each parameter's place in the flat buffers and the output(s) its gradient comes from. */
export function paramSlots(trainable: TensorMeta[], outputNames: Set<string>, gradOutputs: Record<string, string> | undefined, rowGradOutputs: Record<string, RowGradientOutputs> | undefined): ParamSlot[] {
  let offset = 0;
  return trainable.map((t) => {
    const slot: ParamSlot = { name: t.name, grad: gradOutputs?.[t.name] ?? `${t.name}_grad`, dims: t.dims, offset, size: t.length };
    const byName = { rows: `${t.name}_grad_rows`, indices: `${t.name}_grad_indices` };
    const rowOutputs = rowGradOutputs?.[t.name] ?? (!outputNames.has(slot.grad) && outputNames.has(byName.rows) && outputNames.has(byName.indices) ? byName : undefined);
    if (rowOutputs && t.dims.length >= 1) {
      slot.rows = { name: t.name, offset, rowCount: t.dims[0], width: t.dims.slice(1).reduce((a, b) => a * b, 1), outputs: rowOutputs, written: [] };
    }
    offset += t.length;
    return slot;
  });
}
