// Gradient builder, top level: turns a (possibly GRL-patched) model into the
// training graph (forward + losses + backward, parameter gradients as outputs)
// and the eval graph (forward + losses), both in default-domain ONNX ops only,
// ready for stock onnxruntime-node InferenceSessions.
//
// Nothing here copies initializer bytes: frozen initializers are shared
// TensorProto objects and trainable ones become graph inputs.
//
// buildTrainingGraph runs the steps in order: the forward (training-forward.ts),
// the losses and their seeds (training-losses.ts), the backward and the gradient
// outputs (training-backward.ts), then the two models (training-proto.ts). The
// order matters: each step takes its new tensor names from the same graph.
import type { Model } from '../onnx/io';
import { DataType, GraphProto, ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto';
import { Graph, opsetVersion } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { dimsOf } from '../onnx/tensor';
import type { ShapeHints, ShapeInference } from '../onnx/shapes';
import type { LossKind } from './losses';
import type { MaskedRows } from './mlm';
import type { NamePattern } from './select';
import { lambdaInputs, prepareForward, resolveLosses } from './training-forward';
import { LossHead, addLossNodes, lossHeads, lossSeeds, metricOutputs } from './training-losses';
import { differentiateParameters, gradientOutputs } from './training-backward';
import { assembleModel, valueInfo } from './training-proto';

export interface LossOption {
  head: string;
  weight?: number;
  kind?: LossKind;
}

export interface TrainingGraphOptions {
  losses: LossOption[];
  freeze?: NamePattern[];
  trainable?: NamePattern[];
  /** Also output each loss head's logits (training graph; the eval graph always does). */
  includeLogits?: boolean;
  /**
   * For a CE loss on an MLM head (`heads add --mlm`), run the head on the masked rows only
   * (labels != -100; see mlm.ts): its logits output is then [N, vocab]. Default true.
   */
  gatherMaskedRows?: boolean;
  /** Fold decomposed LayerNorms into LayerNormalization-17 nodes (default true; see fuse.ts). */
  fuseLayerNorm?: boolean;
  /** Fold erf-GELU decompositions into Gelu-20 nodes when raising the opset to 20 is safe (default true; see fuse.ts). */
  fuseGelu?: boolean;
  /**
   * Output a lookup table's gradient in row-sparse form when all of it comes from one Gather
   * along axis 0 (an embedding table): `<param>_grad_rows` [N, ...] and `<param>_grad_indices`
   * [N] (int64), meaning dense[indices[k]] += rows[k], instead of the dense `<param>_grad`
   * (default false; `grl-onnx train`, probe and `artifacts --row-sparse-gradients` turn it on;
   * TrainingSession reads both forms). N is the number of looked-up ids, so a
   * vocabulary's mostly-zero gradient is neither filled, scattered nor copied out by onnxruntime.
   */
  rowSparseGradients?: boolean;
  /**
   * Shapes observed in onnxruntime for tensors whose rank static inference cannot decide
   * (observeUnknownRanks in src/onnx/shapes/fallback.ts); the gradient rules need every rank.
   */
  shapeHints?: ShapeHints;
}

/** A row-sparse gradient's two outputs (TrainingGraphOptions.rowSparseGradients). */
export interface RowGradientOutputs {
  rows: string;
  indices: string;
}

export interface TrainingGraph {
  training: ModelProto;
  eval: ModelProto;
  /** Every float initializer considered (rank >= 1), in model order. */
  params: { name: string; dims: number[]; trainable: boolean }[];
  modelInputs: string[];
  heads: { head: string; labelInput: string; output: string; kind: LossKind; weight: number; tokenLevel: boolean; numClasses?: number }[];
  lambdas: { head: string; input: string; node: string; default: number }[];
  outputs: {
    loss: string;
    headLoss: Record<string, string>;
    correct: Record<string, string>;
    count: Record<string, string>;
    /** Dense gradient output per trainable parameter (all but those in rowGrads). */
    grads: Record<string, string>;
    /** Row-sparse gradient outputs, for parameters that have them (rowSparseGradients). */
    rowGrads?: Record<string, RowGradientOutputs>;
  };
}

/** Training graphs emit ScatterND/ScatterElements with reduction='add' (opset 16). */
const MIN_TRAINING_OPSET = 16;
const MIN_MODEL_OPSET = 13;

/** The model's default-domain opset, refused when missing or too old for gradient graphs. */
function modelOpsetOf(model: Model): number {
  const where = model.source;
  const modelOpset = opsetVersion(model.proto);
  if (modelOpset === undefined) throw new GrlError(`${where}: the model imports no default ONNX opset`, { file: where });
  if (modelOpset < MIN_MODEL_OPSET) throw new GrlError(`${where}: opset ${modelOpset} is too old for gradient graphs (need ${MIN_MODEL_OPSET} or newer); re-export the model with a newer opset`, { file: where });
  return modelOpset;
}

export function buildTrainingGraph(model: Model, opts: TrainingGraphOptions): TrainingGraph {
  const src = model.proto.graph ?? {};
  const where = model.source;
  const modelOpset = modelOpsetOf(model);
  if (!opts.losses.length) throw new GrlError(`${where}: no loss given; name at least one head`, { file: where });

  const initNames = new Set((src.initializer ?? []).map((t) => t.name ?? ''));
  const modelInputVI = (src.input ?? []).filter((i) => !initNames.has(i.name ?? ''));
  const modelInputs = modelInputVI.map((i) => i.name ?? '');
  const taken = new Set<string>([...modelInputs, ...initNames]);
  const graphOutputs = new Set((src.output ?? []).map((o) => o.name ?? ''));
  const resolved = resolveLosses(model, opts.losses, taken, graphOutputs);
  const grl = lambdaInputs(src, taken, where);
  const fwd = prepareForward(model, grl.nodes, resolved, graphOutputs, taken, opts, modelOpset, Math.max(modelOpset, MIN_TRAINING_OPSET));

  // The working graph: forward nodes, then the loss nodes, with every input the training graph has.
  const { heads, labelVI } = lossHeads(resolved, fwd.preShapes);
  const lambdaVI = grl.lambdas.map((l) => valueInfo(l.input, DataType.FLOAT, []));
  const work: GraphProto = {
    name: src.name,
    node: [...fwd.nodes],
    initializer: [...(src.initializer ?? [])],
    input: [...modelInputVI, ...labelVI, ...lambdaVI],
    output: [],
    value_info: src.value_info,
  };
  const graph = new Graph(work);
  const loss = addLossNodes(graph, heads, fwd.masked);
  const seeds = lossSeeds(graph, heads, loss.losses);
  const bw = differentiateParameters(model, graph, work, seeds.seeds, fwd.opset, opts);

  // Final node lists: the GRL becomes an Identity (its reversal lives in the backward nodes).
  const asIdentity = (n: NodeProto): NodeProto => (grl.grlNodes.has(n) ? { name: n.name, op_type: 'Identity', input: [n.input?.[0] ?? ''], output: [...(n.output ?? [])], attribute: [] } : n);
  const fwdFinal = fwd.nodes.map(asIdentity);
  const lossNodes = [...loss.emit.nodes, ...seeds.nodes];
  const gradOut = gradientOutputs(graph, bw.trainable, bw.back, opts.rowSparseGradients, where);
  const metrics = metricOutputs(heads, loss.losses, loss.total);
  const logitsVI = logitsOutputs(src, heads, fwd.masked, bw.shapes);

  const trainableSet = new Set(bw.trainable);
  const paramVI = bw.trainable.map((t) => valueInfo(t.name ?? '', DataType.FLOAT, dimsOf(t)));
  const inputs = [...modelInputVI, ...labelVI, ...lambdaVI, ...paramVI];
  const frozenInits = (src.initializer ?? []).filter((t) => !trainableSet.has(t));
  const training = assembleModel(model, inputs, fwd.opset, {
    name: `${src.name ?? 'graph'}_training`,
    nodes: [...fwdFinal, ...lossNodes, ...bw.back.nodes, ...gradOut.nodes],
    initializers: [...frozenInits, ...loss.emit.initializers, ...bw.back.initializers],
    outputs: [...metrics.valueInfo, ...(opts.includeLogits ? logitsVI : []), ...gradOut.valueInfo],
  });
  const evalModel = assembleModel(model, inputs, fwd.opset, {
    name: `${src.name ?? 'graph'}_eval`,
    nodes: [...fwdFinal, ...lossNodes],
    initializers: [...frozenInits, ...loss.emit.initializers],
    outputs: [...metrics.valueInfo, ...logitsVI],
  });

  const { grads, rowGrads } = gradOut;
  return {
    training,
    eval: evalModel,
    params: bw.params,
    modelInputs,
    heads,
    lambdas: grl.lambdas,
    outputs: { loss: loss.total, headLoss: metrics.headLoss, correct: metrics.correct, count: metrics.count, grads, ...(Object.keys(rowGrads).length ? { rowGrads } : {}) },
  };
}

/** Each loss head's logits output: [N, vocab] when gathered to the masked rows, else as the model declares it. */
function logitsOutputs(src: GraphProto, heads: LossHead[], masked: MaskedRows | undefined, shapes: ShapeInference): ValueInfoProto[] {
  const outVI = new Map((src.output ?? []).map((o) => [o.name ?? '', o]));
  return heads.map((h) => {
    const gathered = masked?.shapes.get(h.head);
    return gathered ? valueInfo(h.output, DataType.FLOAT, gathered) : outVI.get(h.output) ?? valueInfo(h.output, DataType.FLOAT, shapes.shape(h.output));
  });
}
