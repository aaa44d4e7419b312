// Training: row-sparse gradients (TrainingGraphOptions.rowSparseGradients). An embedding
// table's gradient comes out of the training graph as the looked-up rows of dY and their
// row indices; the session adds them into its flat gradient buffer here. Rows repeat when a
// token id does, and they are added in index order, as onnxruntime's ScatterElements adds
// them, so the dense result is bit-identical to the graph's own dense gradient.
import { GrlError } from '../onnx/errors';

/** Where one parameter's dense gradient lives in a flat buffer, and its row layout. */
export interface RowTarget {
  name: string;
  /** Offset of the parameter in the flat buffer, in floats. */
  offset: number;
  /** Rows of the table (its first dimension) and floats per row. */
  rowCount: number;
  width: number;
}

/** Throws unless `rows` holds one row per index and every index lies in the table. */
export function checkRows(t: RowTarget, rows: Float32Array, indices: BigInt64Array): void {
  if (rows.length !== indices.length * t.width) {
    throw new GrlError(`'${t.name}': ${indices.length} row indices but ${rows.length} row values (rows of ${t.width})`);
  }
  for (let k = 0; k < indices.length; k++) {
    const row = Number(indices[k]);
    if (!(row >= 0 && row < t.rowCount)) throw new GrlError(`'${t.name}': gradient row index ${row} is outside [0, ${t.rowCount})`);
  }
}

/** target[offset + indices[k] * width + j] += rows[k * width + j] for every k, j (checked first, so a bad input writes nothing). */
export function scatterAddRows(buffer: Float32Array, t: RowTarget, rows: Float32Array, indices: BigInt64Array): void {
  checkRows(t, rows, indices);
  addCheckedRows(buffer, t, rows, indices);
}

/** scatterAddRows for rows and indices that checkRows has already accepted. */
export function addCheckedRows(buffer: Float32Array, t: RowTarget, rows: Float32Array, indices: BigInt64Array): void {
  const { offset, width } = t;
  for (let k = 0; k < indices.length; k++) {
    const dst = offset + Number(indices[k]) * width;
    const src = k * width;
    for (let j = 0; j < width; j++) buffer[dst + j] += rows[src + j];
  }
}

/** Zero the rows an earlier scatterAddRows wrote (indices already checked there). */
export function zeroRows(buffer: Float32Array, t: RowTarget, indices: BigInt64Array): void {
  for (let k = 0; k < indices.length; k++) {
    const dst = t.offset + Number(indices[k]) * t.width;
    buffer.fill(0, dst, dst + t.width);
  }
}
