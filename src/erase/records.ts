// Concept erasure, the record each spliced eraser leaves in the model's
// metadata_props (`grl-onnx.erasers`, a JSON array): which tensor, which nodes and
// initializers, and what it was fit on. Dependency-free so inspect and the
// training-graph builder (which keeps eraser matrices frozen) can read it.
import type { ModelProto } from '../onnx/proto';
import type { EraseMethod } from './eraser';

export const ERASERS_KEY = 'grl-onnx.erasers';

/** What `grl-onnx.erasers` records per eraser. */
export interface EraserRecord {
  method: EraseMethod;
  /** The tensor the eraser was fit on and now replaces. */
  tensor: string;
  /** The tensor the eraser's MatMul reads, and the one it writes. */
  input: string;
  output: string;
  nodes: string[];
  initializers: string[];
  dim: number;
  rank: number;
  /** What it was fit on and how (label, data file and hash, rows, method statistics). */
  fit: EraserFitInfo;
}

export interface EraserFitInfo {
  label?: string;
  data?: string;
  dataSha256?: string;
  rows?: number;
  classes?: number;
  seed?: number;
  [key: string]: unknown;
}

export function readErasers(proto: ModelProto): EraserRecord[] {
  const entry = (proto.metadata_props ?? []).find((m) => m.key === ERASERS_KEY);
  if (!entry?.value) return [];
  try {
    const v = JSON.parse(entry.value) as EraserRecord[];
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

export function writeErasers(proto: ModelProto, records: EraserRecord[]): void {
  const meta = (proto.metadata_props ?? []).filter((m) => m.key !== ERASERS_KEY);
  if (records.length) meta.push({ key: ERASERS_KEY, value: JSON.stringify(records) });
  proto.metadata_props = meta;
}

/** The eraser at `tensor` (its fit tensor, or its raw input), if any. */
export function eraserAt(proto: ModelProto, tensor: string): EraserRecord | undefined {
  return readErasers(proto).find((r) => r.tensor === tensor || r.input === tensor);
}

