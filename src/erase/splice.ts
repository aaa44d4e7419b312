// Concept erasure, the splice: put an eraser into the graph at tensor T as ONNX
// nodes, so every consumer of T reads the erased encodings and the model still
// runs in stock onnxruntime. When T is produced by a node, that node now writes
// `T/before_erase` and the eraser writes T itself, so T keeps its name (graph
// outputs, head detection and later splices see the erased tensor); a graph input
// T is left alone and its consumers are rewired to `T/erase/<method>`.
// What each eraser was fit on goes to metadata_props (`grl-onnx.erasers`).
import type { Model } from '../onnx/io';
import { Graph, nodeLabel, subgraphReads } from '../onnx/graph';
import { GrlError, GraphError } from '../onnx/errors';
import { DataType, ModelProto } from '../onnx/proto';
import { float32Tensor } from '../onnx/tensor';
import { inferShapes } from '../onnx/shapes';
import { copyForSurgery } from '../patch/patch';
import { Eraser, denseEraser } from './eraser';
import { ERASERS_KEY, EraserFitInfo, EraserRecord, eraserAt, eraserMetadataProblem, readErasers, writeErasers } from './records';

export type { EraserFitInfo, EraserRecord };
export { eraserAt, readErasers };

/** Rank and feature size of a tensor an eraser can go on: float [rows, d] or [batch, seq, d]. */
export function checkEraseTensor(model: Model, tensor: string): { rank?: number; dim?: number } {
  const graph = new Graph(model.proto.graph ?? {});
  const where = `${model.source}: tensor '${tensor}'`;
  if (graph.initializer(tensor)) throw new GrlError(`${where} is an initializer (a weight); erase at an activation`, { file: model.source });
  if (!graph.producer(tensor) && !graph.isGraphInput(tensor)) throw new GrlError(`${model.source}: no tensor '${tensor}' in the graph`, { file: model.source });
  const shapes = inferShapes(model.proto.graph ?? {});
  const dtype = shapes.dtype(tensor);
  if (dtype !== undefined && dtype !== DataType.FLOAT) throw new GrlError(`${where} is not float32 (element type ${dtype}); an eraser needs float encodings`, { file: model.source });
  const s = shapes.shape(tensor);
  if (!s) return {};
  if (s.length !== 2 && s.length !== 3) throw new GrlError(`${where} has rank ${s.length}; an eraser needs [rows, dim] or [batch, seq, dim]`, { file: model.source });
  const d = s[s.length - 1];
  return { rank: s.length, dim: typeof d === 'number' ? d : undefined };
}

export interface SpliceOptions {
  tensor: string;
  fit?: EraserFitInfo;
  /** Replace an eraser already at `tensor` (otherwise that is an error). */
  replace?: boolean;
}

export interface SpliceResult {
  model: Model;
  record: EraserRecord;
  replaced?: EraserRecord;
}

export function spliceEraser(model: Model, eraser: Eraser, opts: SpliceOptions): SpliceResult {
  const proto = surgeryCopy(model);
  const graph = new Graph(proto.graph ?? {});
  const T = opts.tensor;
  const existing = eraserAt(proto, T);
  let replaced: EraserRecord | undefined;
  if (existing) {
    if (!opts.replace) throw new GrlError(`${model.source}: tensor '${T}' already has a ${existing.method} eraser (${existing.nodes.join(', ')}); pass --replace to fit a new one in its place`, { file: model.source });
    unsplice(proto, graph, existing);
    replaced = existing;
  }
  const shape = checkEraseTensor({ ...model, proto }, T);
  if (shape.dim !== undefined && shape.dim !== eraser.dim) throw new GrlError(`${model.source}: tensor '${T}' has ${shape.dim} features but the eraser was fit on ${eraser.dim}`, { file: model.source });
  const implicit = graph.consumersOf(T).find((n) => subgraphReads(n).includes(T));
  if (implicit) throw new GrlError(`${model.source}: '${T}' is read inside a subgraph of node ${nodeLabel(implicit)} (${implicit.op_type}); an eraser cannot be spliced there`, { file: model.source });

  const m = eraser.method;
  const { p, c } = denseEraser(eraser);
  const pName = graph.uniqueName(`erase/${m}/P`);
  graph.addInitializer(float32Tensor(pName, [eraser.dim, eraser.dim], p));
  const inits = [pName];
  let cName: string | undefined;
  if (c) {
    cName = graph.uniqueName(`erase/${m}/c`);
    graph.addInitializer(float32Tensor(cName, [eraser.dim], c));
    inits.push(cName);
  }
  const producer = graph.producer(T);
  let input = T;
  let output = T;
  let index: number;
  const consumers = [...graph.consumersOf(T)];
  if (producer) {
    input = graph.uniqueName(`${T}/before_erase`);
    producer.output = (producer.output ?? []).map((o) => (o === T ? input : o));
    index = graph.nodes.indexOf(producer) + 1;
  } else {
    if (!consumers.length) throw new GrlError(`${model.source}: nothing reads graph input '${T}'; there is nowhere to splice an eraser`, { file: model.source });
    output = graph.uniqueName(`${T}/erase/${m}`);
    index = Math.min(...consumers.map((n) => graph.nodes.indexOf(n)));
  }
  const matmulOut = cName ? graph.uniqueName(`${T}/erase/${m}/xP`) : output;
  const nodes = [graph.uniqueName(`erase/${m}/MatMul`)];
  graph.add('MatMul', [input, pName], [matmulOut], { name: nodes[0], index });
  if (cName) {
    nodes.push(graph.uniqueName(`erase/${m}/Add`));
    graph.add('Add', [matmulOut, cName], [output], { name: nodes[1], index: index + 1 });
  }
  if (!producer) for (const n of consumers) graph.rewireInput(n, T, output);
  graph.reindex();
  try {
    graph.validate();
  } catch (e) {
    throw new GraphError(`${model.source}: splicing the eraser produced an invalid graph: ${(e as Error).message}`);
  }
  const record: EraserRecord = { method: m, tensor: T, input, output, nodes, initializers: inits, dim: eraser.dim, rank: eraser.rank, fit: opts.fit ?? {} };
  writeErasers(proto, [...readErasers(proto), record]);
  return { model: { ...model, proto }, record, replaced };
}

/** patch's surgery copy, plus an initializer list of our own (we add to it; the input model must not change). */
function surgeryCopy(model: Model): ModelProto {
  const proto = copyForSurgery(model.proto);
  proto.graph = { ...proto.graph, initializer: [...(proto.graph?.initializer ?? [])] };
  return proto;
}

/** Take an eraser out: T is produced (or read) as before; its initializers and metadata go. */
function unsplice(proto: ModelProto, graph: Graph, r: EraserRecord): void {
  const names = new Set(r.nodes);
  const inits = new Set(r.initializers);
  const g = graph.proto;
  g.node = graph.nodes.filter((n) => !names.has(n.name ?? ''));
  g.initializer = graph.initializers.filter((t) => !inits.has(t.name ?? ''));
  if (r.input !== r.tensor) {
    // The producer writes T again.
    for (const n of g.node) n.output = (n.output ?? []).map((o) => (o === r.input ? r.tensor : o));
  } else {
    for (const n of g.node) n.input = (n.input ?? []).map((i) => (i === r.output ? r.tensor : i));
  }
  graph.reindex();
  writeErasers(proto, readErasers(proto).filter((x) => x.tensor !== r.tensor));
}

/** The model without the eraser at `tensor` (an error if there is none). */
export function removeEraser(model: Model, tensor: string): { model: Model; removed: EraserRecord } {
  if (!eraserAt(model.proto, tensor)) throw new GrlError(`${model.source}: no eraser at tensor '${tensor}'`, { file: model.source });
  const r = removeErasers(model, tensor);
  return { model: r.model, removed: r.removed[0] };
}

/** `leace at 'T'`: how errors name an eraser. */
const eraserLabel = (r: EraserRecord) => `${r.method} at '${r.tensor}'`;

/**
 * The model without the erasers `which` selects: the one at a tensor (the tensor it was fit
 * on, or the tensor it reads) or the one owning a node of that name; every eraser when `which`
 * is undefined. Each comes out as `unsplice` takes it out, so the graph and metadata are the
 * model's before `erase`, byte for byte. Later erasers go first: each finds the graph as it left it.
 */
export function removeErasers(model: Model, which?: string): { model: Model; removed: EraserRecord[] } {
  const problem = eraserMetadataProblem(model.proto);
  if (problem) throw new GrlError(`${model.source}: ${problem}; erasers cannot be taken out of it safely`, { file: model.source });
  const all = readErasers(model.proto);
  if (!all.length) throw new GrlError(`${model.source}: the model has no eraser (no ${ERASERS_KEY} metadata); there is nothing to remove`, { file: model.source });
  const chosen = which === undefined ? all : all.filter((r) => r.tensor === which || r.input === which || r.nodes.includes(which));
  if (!chosen.length) throw new GrlError(`${model.source}: no eraser at tensor or node '${which}'; the model has ${all.map(eraserLabel).join(', ')}`, { file: model.source });
  const proto = surgeryCopy(model);
  for (const r of [...chosen].reverse()) unsplice(proto, new Graph(proto.graph ?? {}), r);
  try {
    new Graph(proto.graph ?? {}).validate();
  } catch (e) {
    throw new GraphError(`${model.source}: removing ${chosen.map(eraserLabel).join(', ')} produced an invalid graph: ${(e as Error).message}`);
  }
  return { model: { ...model, proto }, removed: chosen };
}
