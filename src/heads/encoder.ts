// Heads, step 0: what an encoder export looks like from the outside. Finds the
// word-embedding table (the Gather on input_ids), the hidden size d, the
// encoder's own outputs (`last_hidden_state`, `pooler_output`: [.., d] tensors
// that are the trunk, not task heads) and the hidden-state tensors [B, T, d]
// per layer that a head can read. Depends only on src/onnx, so head detection
// in src/patch can use it.
import type { Model } from '../onnx/io';
import { DataType } from '../onnx/proto';
import { Graph } from '../onnx/graph';
import { dimsOf, isFloatType } from '../onnx/tensor';
import { ShapeInference, inferShapes, Dim } from '../onnx/shapes';
import { GRL_DOMAIN } from '../patch/grl';
import { readHeadRecords } from './metadata';

export interface WordEmbedding {
  /** Initializer [V, d]. */
  table: string;
  vocab: number;
  d: number;
  /** The graph input holding the token ids. */
  ids: string;
}

const INT_TYPES = new Set([DataType.INT64, DataType.INT32]);

/** The initializer that a Gather indexes with an integer graph input (input_ids first). */
export function findWordEmbedding(graph: Graph): WordEmbedding | undefined {
  const found: WordEmbedding[] = [];
  for (const n of graph.nodes) {
    if (n.op_type !== 'Gather') continue;
    const [table, ids] = n.input ?? [];
    const t = table ? graph.initializer(table) : undefined;
    if (!t || !ids || !isFloatType(t.data_type ?? 0) || dimsOf(t).length !== 2) continue;
    const input = graph.graphInputs.find((i) => i.name === ids);
    if (!input || !INT_TYPES.has(input.type?.tensor_type?.elem_type ?? 0)) continue;
    const [vocab, d] = dimsOf(t);
    found.push({ table, vocab, d, ids });
  }
  // token_type_ids also indexes a table; the word table is the one on input_ids, else the largest.
  return found.find((e) => e.ids === 'input_ids') ?? found.sort((a, b) => b.vocab - a.vocab)[0];
}

/** The hidden size: the word-embedding width. */
export function hiddenSize(graph: Graph): number | undefined {
  return findWordEmbedding(graph)?.d;
}

function isLogitsName(name: string): boolean {
  return /(^|_)logits($|_)/.test(name);
}

/**
 * Outputs that are the encoder itself rather than a task head: float outputs whose last
 * dim is the hidden size, unless `heads add` recorded them as heads or they are named
 * like logits. `last_hidden_state` and `pooler_output` are such outputs.
 */
export function encoderOutputs(model: Model, graph: Graph, shapes?: ShapeInference): Set<string> {
  const out = new Set<string>();
  const d = hiddenSize(graph);
  if (d === undefined) return out;
  const recorded = new Set(readHeadRecords(model).map((h) => h.output));
  let table = shapes;
  for (const o of graph.graphOutputs) {
    const name = o.name ?? '';
    if (recorded.has(name) || isLogitsName(name)) continue;
    let dims = declaredDims(o);
    if (!dims) dims = (table ??= inferShapes(graph.proto)).shape(name);
    if (dims && dims.length >= 2 && dims[dims.length - 1] === d) out.add(name);
  }
  return out;
}

function declaredDims(o: { type?: { tensor_type?: { shape?: { dim?: { dim_value?: unknown; dim_param?: string }[] } } } }): Dim[] | undefined {
  const dims = o.type?.tensor_type?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((x) => (x.dim_param ? x.dim_param : x.dim_value !== undefined && x.dim_value !== null ? Number(x.dim_value) : null));
}

export interface HiddenState {
  /** The layer (module path), e.g. `encoder/layer.1`, or `embeddings`. */
  layer: string;
  tensor: string;
  shape: Dim[];
}

/** The module path of a node from torch's scoped names: `/encoder/layer.3/output/..` -> `encoder/layer.3`. */
function moduleOf(nodeName: string | undefined): string {
  const segments = (nodeName ?? '').split('/').filter(Boolean).slice(0, -1);
  const k = segments.findIndex((s) => /\.\d+$/.test(s));
  if (k >= 0) return segments.slice(0, k + 1).join('/');
  return segments[0] ?? '';
}

/**
 * Per layer, the last float tensor of rank 3 and width d it produces that a later layer (or
 * a graph output) reads: the hidden states after the embeddings and after each layer.
 */
export function hiddenStates(graph: Graph, shapes: ShapeInference = inferShapes(graph.proto)): HiddenState[] {
  const d = hiddenSize(graph);
  if (d === undefined) return [];
  const last = new Map<string, HiddenState>();
  for (const n of graph.nodes) {
    const layer = moduleOf(n.name);
    if (!layer || layer === 'heads' || layer.startsWith('heads.') || n.domain === GRL_DOMAIN) continue;
    for (const t of n.output ?? []) {
      const dims = t ? shapes.shape(t) : undefined;
      if (!dims || dims.length !== 3 || dims[2] !== d || !isFloatType(shapes.dtype(t) ?? DataType.FLOAT)) continue;
      const leaves = graph.isGraphOutput(t) || graph.consumersOf(t).some((c) => moduleOf(c.name) !== layer);
      if (leaves) last.set(layer, { layer, tensor: t, shape: dims });
    }
  }
  return [...last.values()];
}
