// Gradient builder, training graph step 3: the backward pass. Parameters are the
// float initializers on a path to a loss (minus frozen ones and spliced erasers);
// their gradients become graph outputs, dense or, for embedding tables, row-sparse.
import type { Model } from '../onnx/io';
import { DataType, GraphProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto';
import type { Graph } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { dataTypeName, dimsOf } from '../onnx/tensor';
import { ShapeInference, inferShapes } from '../onnx/shapes';
import { Differentiated, differentiablePath, differentiate, isParameter } from './backward';
import { selectTrainable } from './select';
import { readErasers } from '../erase/records';
import { valueInfo } from './training-proto';
import type { RowGradientOutputs, TrainingGraph, TrainingGraphOptions } from './training';

export interface BackwardPass {
  params: TrainingGraph['params'];
  /** The trainable parameters' initializers, in model order. */
  trainable: TensorProto[];
  back: Differentiated;
  /** Shapes of the working graph (forward + losses). */
  shapes: ShapeInference;
}

/**
 * Parameters: float initializers; trainable by default when on a path to a loss. Rank-0
 * initializers are left out: exporters store constants (eps, 1/sqrt(d), Pow's 2) that way.
 * Rules emit float32 constants: a float16/bfloat16/double model would give a graph ORT rejects.
 */
export function differentiateParameters(model: Model, graph: Graph, work: GraphProto, seeds: Map<string, string>, opset: number, opts: TrainingGraphOptions): BackwardPass {
  const where = model.source;
  const considered = (model.proto.graph?.initializer ?? []).filter(isParameter);
  const otherFloat = considered.find((t) => t.data_type !== DataType.FLOAT);
  if (otherFloat) throw new GrlError(`${where}: initializer '${otherFloat.name}' is ${dataTypeName(otherFloat.data_type ?? 0)}; grl-onnx builds gradient graphs for float32 models only (convert the model to float32 first)`, { file: where });
  const shapes = inferShapes(work, opts.shapeHints);
  const path = differentiablePath(graph, considered.map((t) => t.name ?? ''), seeds.keys(), shapes);
  // A spliced concept eraser is a fixed intervention, not a parameter: its matrices stay frozen.
  const eraserInits = new Set(readErasers(model.proto).flatMap((r) => r.initializers));
  const candidates = considered.map((t) => t.name ?? '').filter((n) => path.onPath.has(n) && !eraserInits.has(n));
  const selection = selectTrainable(candidates, considered.map((t) => t.name ?? ''), { freeze: opts.freeze, trainable: opts.trainable });
  const trainable = considered.filter((t) => selection.trainable.has(t.name ?? ''));
  const back = differentiate(graph, { seeds, wrt: trainable.map((t) => t.name ?? ''), opset, shapes });
  const params = considered.map((t) => ({ name: t.name ?? '', dims: dimsOf(t), trainable: selection.trainable.has(t.name ?? '') }));
  return { params, trainable, back, shapes };
}

export interface GradientOutputs {
  grads: Record<string, string>;
  rowGrads: Record<string, RowGradientOutputs>;
  /** Identity nodes that give the row-sparse gradients their output names. */
  nodes: NodeProto[];
  valueInfo: ValueInfoProto[];
}

/** One output per trainable parameter: `<param>_grad`, or its `_grad_rows` and `_grad_indices` (rowSparse). */
export function gradientOutputs(graph: Graph, trainable: TensorProto[], back: Differentiated, rowSparse: boolean | undefined, where: string): GradientOutputs {
  const grads: Record<string, string> = {};
  const rowGrads: Record<string, RowGradientOutputs> = {};
  const nodes: NodeProto[] = [];
  const vi: ValueInfoProto[] = [];
  for (const t of trainable) {
    const name = t.name ?? '';
    const g = back.grads.get(name);
    if (!g) throw new GrlError(`${where}: parameter '${t.name}' lies on a path to the loss but received no gradient (a rule returned none)`, { file: where });
    const rows = rowSparse ? back.rowGrads.get(name) : undefined;
    if (!rows) {
      grads[name] = g;
      vi.push(valueInfo(g, DataType.FLOAT, dimsOf(t)));
      continue;
    }
    const out = { rows: graph.uniqueName(`${name}_grad_rows`), indices: graph.uniqueName(`${name}_grad_indices`) };
    nodes.push(
      { name: graph.uniqueName(`${out.rows}/Identity`), op_type: 'Identity', input: [rows.rows], output: [out.rows], attribute: [] },
      { name: graph.uniqueName(`${out.indices}/Identity`), op_type: 'Identity', input: [rows.indices], output: [out.indices], attribute: [] },
    );
    rowGrads[name] = out;
    const n = `${name}_lookups`;
    vi.push(valueInfo(out.rows, DataType.FLOAT, [n, ...dimsOf(t).slice(1)]), valueInfo(out.indices, DataType.INT64, [n]));
  }
  return { grads, rowGrads, nodes, valueInfo: vi };
}
