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

/** The well-formed records (a model is input: hand-edited or foreign metadata is left out, not trusted). */
export function readErasers(proto: ModelProto): EraserRecord[] {
  return parseErasers(proto).records;
}

/**
 * What is wrong with the model's `grl-onnx.erasers` metadata, if anything: not a JSON
 * array, or entries that are not eraser records (what readErasers leaves out).
 */
export function eraserMetadataProblem(proto: ModelProto): string | undefined {
  const { entries, records } = parseErasers(proto);
  if (entries === undefined) return `its ${ERASERS_KEY} metadata is not a JSON array`;
  const bad = entries - records.length;
  return bad ? `${bad} of the ${entries} entries of its ${ERASERS_KEY} metadata ${bad === 1 ? 'is not an eraser record' : 'are not eraser records'}` : undefined;
}

function parseErasers(proto: ModelProto): { entries: number | undefined; records: EraserRecord[] } {
  const entry = (proto.metadata_props ?? []).find((m) => m.key === ERASERS_KEY);
  if (!entry?.value) return { entries: 0, records: [] };
  let v: unknown;
  try {
    v = JSON.parse(entry.value);
  } catch {
    return { entries: undefined, records: [] };
  }
  if (!Array.isArray(v)) return { entries: undefined, records: [] };
  return { entries: v.length, records: v.filter(isEraserRecord).map((r) => ({ ...r, fit: isObject(r.fit) ? r.fit : {} })) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');

function isEraserRecord(r: unknown): r is EraserRecord {
  if (!isObject(r)) return false;
  const strings = ['method', 'tensor', 'input', 'output'].every((k) => typeof r[k] === 'string');
  return strings && isStrings(r.nodes) && isStrings(r.initializers) && typeof r.dim === 'number' && typeof r.rank === 'number';
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

