// Heads metadata: the `grl-onnx.heads` record of the heads `heads add` built
// (CONTRACTS.md), kept in the model's metadata_props so that head detection,
// `heads remove` and the training-graph builder (MLM row gathering) know them.
import type { Model } from '../onnx/io';
import type { ModelProto } from '../onnx/proto';
import { GrlError } from '../onnx/errors';

export type HeadKind = 'token' | 'seq' | 'mlm';

export interface HeadRecord {
  name: string;
  output: string;
  kind: HeadKind;
  /** The hidden-state tensor the head reads. */
  from: string;
  pool?: 'cls' | 'mean';
  classes: number;
  /** Hidden width of the dense + GELU layer, when the head has one. */
  mlp?: number;
  /** MLM only: whether the decoder uses the word-embedding table. */
  tied?: boolean;
}

export const HEADS_KEY = 'grl-onnx.heads';

export function readHeadRecords(model: Model | { proto: ModelProto; source?: string }): HeadRecord[] {
  const entry = (model.proto.metadata_props ?? []).find((m) => m.key === HEADS_KEY);
  if (!entry) return [];
  try {
    const list = JSON.parse(entry.value ?? '[]') as HeadRecord[];
    if (!Array.isArray(list)) throw new Error('not an array');
    return list;
  } catch (e) {
    throw new GrlError(`${model.source ?? '<model>'}: metadata '${HEADS_KEY}' is not a JSON array of heads (${(e as Error).message})`, { file: model.source });
  }
}

/** Set (or with an empty list, drop) the heads record on a proto whose metadata_props may be edited. */
export function writeHeadRecords(proto: ModelProto, heads: HeadRecord[]): void {
  setMetadata(proto, HEADS_KEY, heads.length ? JSON.stringify(heads) : undefined);
}

/** Set or (value undefined) remove one metadata_props entry, keeping the order of the others. */
export function setMetadata(proto: ModelProto, key: string, value: string | undefined): void {
  const meta = [...(proto.metadata_props ?? [])];
  const k = meta.findIndex((m) => m.key === key);
  if (value === undefined) {
    if (k >= 0) meta.splice(k, 1);
  } else if (k >= 0) {
    meta[k] = { key, value };
  } else {
    meta.push({ key, value });
  }
  proto.metadata_props = meta;
}
