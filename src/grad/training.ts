// Gradient builder, top level: turns a (possibly GRL-patched) model into the
// training graph (forward + losses + backward, parameter gradients as outputs)
// and the eval graph (forward + losses), both in default-domain ONNX ops only,
// ready for stock onnxruntime-node InferenceSessions.
//
// Nothing here copies initializer bytes: frozen initializers are shared
// TensorProto objects and trainable ones become graph inputs.
import type { Model } from '../onnx/io';
import { DataType, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, toNumber } from '../onnx/proto';
import { Graph, nodeReads, opsetVersion } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { attrFloat } from '../onnx/attrs';
import { dataTypeName, dimsOf } from '../onnx/tensor';
import { ShapeHints, inferShapes } from '../onnx/shapes';
import { GRL_DOMAIN } from '../patch/grl';
import { analyzeHeads, grlHeadAttr, isGrlNode, resolveHead } from '../patch/heads';
import { Emitter } from './emit';
import { LossKind, LossTensors, buildLoss } from './losses';
import { differentiablePath, differentiate, isParameter } from './backward';
import { scheduleLeafTails } from './schedule';
import { GELU_OPSET, LAYER_NORM_OPSET, FuseSource, fuseGelus, fuseLayerNorms, opsetRaiseBlockers } from './fuse';
import { NamePattern, selectTrainable } from './select';
import { gatherMlmRows } from './mlm';
import type { Dim } from './types';
import { readErasers } from '../erase/records';

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
const MIN_IR = 8;

function valueInfo(name: string, elemType: number, dims: Dim[] | undefined): ValueInfoProto {
  const shape = dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})) } : undefined;
  return { name, type: { tensor_type: { elem_type: elemType, shape } } };
}

/** What the LayerNorm fusion reads of the source graph; new names avoid every existing one. */
function fuseSource(src: GraphProto, shapes: ReturnType<typeof inferShapes>, taken: Set<string>): FuseSource {
  const inits = new Map((src.initializer ?? []).map((t) => [t.name ?? '', t]));
  const producers = new Map<string, NodeProto>();
  for (const n of src.node ?? []) for (const o of n.output ?? []) if (o) producers.set(o, n);
  const used = new Set<string>([...taken, ...usedNames(src.node ?? []), ...(src.node ?? []).map((n) => n.name ?? '')]);
  return {
    initializer: (n) => inits.get(n),
    producer: (n) => producers.get(n),
    shape: (n) => shapes.shape(n),
    uniqueName: (base) => {
      let name = base;
      for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
      used.add(name);
      return name;
    },
  };
}

/** Keep only the nodes the outputs depend on (ORT would prune them anyway, with warnings). */
function liveNodes(nodes: NodeProto[], outputs: string[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const live = new Set<NodeProto>();
  const stack = [...outputs];
  while (stack.length) {
    const p = producer.get(stack.pop() as string);
    if (!p || live.has(p)) continue;
    live.add(p);
    for (const i of nodeReads(p)) if (i) stack.push(i);
  }
  return nodes.filter((n) => live.has(n));
}

function usedNames(nodes: NodeProto[]): Set<string> {
  const used = new Set<string>();
  for (const n of nodes) {
    for (const i of nodeReads(n)) if (i) used.add(i);
    for (const o of n.output ?? []) if (o) used.add(o);
  }
  return used;
}

export function buildTrainingGraph(model: Model, opts: TrainingGraphOptions): TrainingGraph {
  const src = model.proto.graph ?? {};
  const where = model.source;
  const modelOpset = opsetVersion(model.proto);
  if (modelOpset === undefined) throw new GrlError(`${where}: the model imports no default ONNX opset`, { file: where });
  if (modelOpset < MIN_MODEL_OPSET) throw new GrlError(`${where}: opset ${modelOpset} is too old for gradient graphs (need ${MIN_MODEL_OPSET} or newer); re-export the model with a newer opset`, { file: where });
  let opset = Math.max(modelOpset, MIN_TRAINING_OPSET);
  if (!opts.losses.length) throw new GrlError(`${where}: no loss given; name at least one head`, { file: where });

  const initNames = new Set((src.initializer ?? []).map((t) => t.name ?? ''));
  const modelInputVI = (src.input ?? []).filter((i) => !initNames.has(i.name ?? ''));
  const modelInputs = modelInputVI.map((i) => i.name ?? '');
  const taken = new Set<string>([...modelInputs, ...initNames]);
  const nodeOutputs = new Set((src.node ?? []).flatMap((n) => n.output ?? []));

  // Heads: resolved like `grl-onnx patch --head`; a plain graph output name is accepted too.
  const analysis = analyzeHeads(model);
  const graphOutputs = new Set((src.output ?? []).map((o) => o.name ?? ''));
  const resolved = opts.losses.map((l) => {
    let head: string;
    let output: string;
    try {
      const h = resolveHead(model, l.head, analysis);
      head = h.name;
      output = h.output;
    } catch (e) {
      if (!graphOutputs.has(l.head)) throw e;
      head = l.head;
      output = l.head;
    }
    const weight = l.weight ?? 1;
    if (!Number.isFinite(weight)) throw new GrlError(`${where}: loss weight of head '${head}' must be finite`, { file: where });
    if (taken.has(head)) throw new GrlError(`${where}: cannot name the label input of head '${head}' after it: the model already has an input or initializer '${head}'`, { file: where });
    // A head named after an output without a _logits affix (or after another node's output)
    // cannot give its name to a graph input: its label input is then `<head>.labels`.
    let labelInput = head;
    for (let k = 1; nodeOutputs.has(labelInput) || (labelInput !== head && taken.has(labelInput)); k++) labelInput = k === 1 ? `${head}.labels` : `${head}.labels_${k}`;
    taken.add(labelInput);
    return { head, labelInput, output, weight, kind: l.kind ?? ('ce' as LossKind) };
  });
  const dup = resolved.find((h, k) => resolved.findIndex((o) => o.head === h.head) !== k);
  if (dup) throw new GrlError(`${where}: head '${dup.head}' is given twice`, { file: where });

  // GRL nodes read λ from a graph input so schedules can change it every step.
  const lambdas: TrainingGraph['lambdas'] = [];
  const grlCopies = new Map<NodeProto, NodeProto>();
  const forward = (src.node ?? []).map((n) => {
    if (!isGrlNode(n)) return n;
    const head = grlHeadAttr(n) || n.name || n.output?.[0] || 'grl';
    let input = `grl.${head}.lambda`;
    if (taken.has(input)) input = `grl.${n.name || n.output?.[0]}.lambda`;
    if (taken.has(input)) throw new GrlError(`${where}: two GradientReversal nodes would share the λ input '${input}'`, { file: where });
    taken.add(input);
    lambdas.push({ head, input, node: n.name ?? '', default: attrFloat(n, 'lambda', 1) });
    const copy: NodeProto = { ...n, input: [n.input?.[0] ?? '', input] };
    grlCopies.set(n, copy);
    return copy;
  });

  // The LayerNorm decompositions of pre-17 exports become LayerNormalization nodes (fuse.ts).
  const preShapes = inferShapes(src, opts.shapeHints);
  const fuseSrc = fuseSource(src, preShapes, taken);
  const fusion = opts.fuseLayerNorm === false ? { nodes: forward, fused: 0 } : fuseLayerNorms(forward, graphOutputs, fuseSrc);
  let fwdNodes = fusion.nodes;
  if (fusion.fused) opset = Math.max(opset, LAYER_NORM_OPSET);
  // The erf-GELUs become Gelu-20 nodes only if no remaining node changes meaning at opset 20.
  if (opts.fuseGelu !== false && opsetRaiseBlockers(fwdNodes, modelOpset, GELU_OPSET).length === 0) {
    const gelus = fuseGelus(fwdNodes, graphOutputs, fuseSrc);
    fwdNodes = gelus.nodes;
    if (gelus.fused) opset = Math.max(opset, GELU_OPSET);
  }

  // MLM heads: the per-position nodes run on the masked rows only (mlm.ts).
  const masked = opts.gatherMaskedRows === false
    ? undefined
    : gatherMlmRows(model, fwdNodes, resolved, graphOutputs, (t) => preShapes.shape(t), fuseSrc);
  if (masked) fwdNodes = masked.nodes;

  // The working graph: forward nodes, then the loss nodes, with every input the training graph has.
  const heads: TrainingGraph['heads'] = [];
  const labelVI: ValueInfoProto[] = [];
  for (const h of resolved) {
    const outShape = preShapes.shape(h.output);
    const classes = outShape?.[outShape.length - 1];
    const numClasses = h.kind === 'ce' && typeof classes === 'number' ? classes : undefined;
    heads.push({ head: h.head, labelInput: h.labelInput, output: h.output, kind: h.kind, weight: h.weight, tokenLevel: h.kind === 'ce' && (outShape?.length ?? 0) >= 3, numClasses });
    labelVI.push(h.kind === 'ce' ? valueInfo(h.labelInput, DataType.INT64, outShape?.slice(0, -1)) : valueInfo(h.labelInput, DataType.FLOAT, outShape));
  }
  const lambdaVI = lambdas.map((l) => valueInfo(l.input, DataType.FLOAT, []));
  const work: GraphProto = {
    name: src.name,
    node: [...fwdNodes],
    initializer: [...(src.initializer ?? [])],
    input: [...modelInputVI, ...labelVI, ...lambdaVI],
    output: [],
    value_info: src.value_info,
  };
  const graph = new Graph(work);
  const lossEmit = new Emitter(graph, 'loss');
  const losses = new Map<string, LossTensors>();
  for (const h of heads) {
    lossEmit.prefix = `loss.${h.head}`;
    const names = { loss: graph.uniqueName(`loss.${h.head}`), correct: h.kind === 'ce' ? graph.uniqueName(`correct.${h.head}`) : undefined, count: h.kind === 'ce' ? graph.uniqueName(`count.${h.head}`) : undefined };
    const labels = masked?.labels.get(h.head) ?? h.labelInput;
    losses.set(h.head, buildLoss(lossEmit, { head: h.head, kind: h.kind, output: h.output, labels, weight: h.weight, numClasses: h.numClasses }, names));
  }
  lossEmit.prefix = 'loss';
  const weighted = heads.map((h) => (h.weight === 1 ? (losses.get(h.head) as LossTensors).loss : lossEmit.op('Mul', [(losses.get(h.head) as LossTensors).loss, lossEmit.float(h.weight, 'weight')], undefined, `weighted.${h.head}`)));
  const totalName = graph.uniqueName('loss');
  lossEmit.nodes.push({ name: graph.uniqueName('loss/Sum'), op_type: 'Sum', input: weighted, output: [totalName], attribute: [] });
  for (const t of lossEmit.initializers) graph.addInitializer(t);
  for (const n of lossEmit.nodes) graph.addNode(n);

  // Seeds: one fused loss gradient per head output (summed if two losses share an output).
  const seedLists = new Map<string, string[]>();
  for (const h of heads) seedLists.set(h.output, [...(seedLists.get(h.output) ?? []), (losses.get(h.head) as LossTensors).seed]);
  const seedNodes: NodeProto[] = [];
  const seeds = new Map<string, string>();
  for (const [out, list] of seedLists) {
    if (list.length === 1) { seeds.set(out, list[0]); continue; }
    const g = graph.uniqueName(`${out}_grad`);
    seedNodes.push(graph.add('Sum', list, [g], { name: graph.uniqueName(`${g}/Sum`) }));
    seeds.set(out, g);
  }

  // Parameters: float initializers; trainable by default when on a path to a loss. Rank-0
  // initializers are left out: exporters store constants (eps, 1/sqrt(d), Pow's 2) that way.
  // Rules emit float32 constants: a float16/bfloat16/double model would give a graph ORT rejects.
  const considered = (src.initializer ?? []).filter(isParameter);
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

  // Final node lists: the GRL becomes an Identity (its reversal lives in the backward nodes).
  const grlSet = new Set(grlCopies.values());
  const asIdentity = (n: NodeProto): NodeProto => (grlSet.has(n) ? { name: n.name, op_type: 'Identity', input: [n.input?.[0] ?? ''], output: [...(n.output ?? [])], attribute: [] } : n);
  const fwdFinal = fwdNodes.map(asIdentity);
  const lossNodes = [...lossEmit.nodes, ...seedNodes];

  const params = considered.map((t) => ({ name: t.name ?? '', dims: dimsOf(t), trainable: selection.trainable.has(t.name ?? '') }));
  const grads: Record<string, string> = {};
  const rowGrads: Record<string, RowGradientOutputs> = {};
  const rowNodes: NodeProto[] = [];
  const gradVI: ValueInfoProto[] = [];
  for (const t of trainable) {
    const name = t.name ?? '';
    const g = back.grads.get(name);
    if (!g) throw new GrlError(`${where}: parameter '${t.name}' lies on a path to the loss but received no gradient (a rule returned none)`, { file: where });
    const rows = opts.rowSparseGradients ? back.rowGrads.get(name) : undefined;
    if (!rows) {
      grads[name] = g;
      gradVI.push(valueInfo(g, DataType.FLOAT, dimsOf(t)));
      continue;
    }
    const out = { rows: graph.uniqueName(`${name}_grad_rows`), indices: graph.uniqueName(`${name}_grad_indices`) };
    rowNodes.push(
      { name: graph.uniqueName(`${out.rows}/Identity`), op_type: 'Identity', input: [rows.rows], output: [out.rows], attribute: [] },
      { name: graph.uniqueName(`${out.indices}/Identity`), op_type: 'Identity', input: [rows.indices], output: [out.indices], attribute: [] },
    );
    rowGrads[name] = out;
    const n = `${name}_lookups`;
    gradVI.push(valueInfo(out.rows, DataType.FLOAT, [n, ...dimsOf(t).slice(1)]), valueInfo(out.indices, DataType.INT64, [n]));
  }
  const headLoss: Record<string, string> = {};
  const correct: Record<string, string> = {};
  const count: Record<string, string> = {};
  for (const h of heads) {
    const l = losses.get(h.head) as LossTensors;
    headLoss[h.head] = l.loss;
    if (l.correct) correct[h.head] = l.correct;
    if (l.count) count[h.head] = l.count;
  }

  const scalar = (n: string) => valueInfo(n, DataType.FLOAT, []);
  const outVI = new Map((src.output ?? []).map((o) => [o.name ?? '', o]));
  const logitsVI = heads.map((h) => {
    const gathered = masked?.shapes.get(h.head);
    return gathered ? valueInfo(h.output, DataType.FLOAT, gathered) : outVI.get(h.output) ?? valueInfo(h.output, DataType.FLOAT, shapes.shape(h.output));
  });
  const metricVI = [
    scalar(totalName),
    ...heads.map((h) => scalar(headLoss[h.head])),
    ...heads.filter((h) => correct[h.head]).flatMap((h) => [scalar(correct[h.head]), scalar(count[h.head])]),
  ];
  const trainableSet = new Set(trainable);
  const paramVI = trainable.map((t) => valueInfo(t.name ?? '', DataType.FLOAT, dimsOf(t)));
  const inputs = [...modelInputVI, ...labelVI, ...lambdaVI, ...paramVI];
  const frozenInits = (src.initializer ?? []).filter((t) => !trainableSet.has(t));

  const assemble = (nodes: NodeProto[], inits: TensorProto[], outputs: ValueInfoProto[], name: string): ModelProto => {
    const live = scheduleLeafTails(liveNodes(nodes, outputs.map((o) => o.name ?? '')));
    const used = usedNames(live);
    const g: GraphProto = {
      name,
      node: live,
      initializer: inits.filter((t) => used.has(t.name ?? '')),
      input: inputs,
      output: outputs,
      value_info: (src.value_info ?? []).filter((v) => used.has(v.name ?? '')),
    };
    new Graph(g).validate();
    return trainingModelProto(model.proto, g, opset);
  };
  const training = assemble(
    [...fwdFinal, ...lossNodes, ...back.nodes, ...rowNodes],
    [...frozenInits, ...lossEmit.initializers, ...back.initializers],
    [...metricVI, ...(opts.includeLogits ? logitsVI : []), ...gradVI],
    `${src.name ?? 'graph'}_training`,
  );
  const evalModel = assemble([...fwdFinal, ...lossNodes], [...frozenInits, ...lossEmit.initializers], [...metricVI, ...logitsVI], `${src.name ?? 'graph'}_eval`);

  return {
    training,
    eval: evalModel,
    params,
    modelInputs,
    heads,
    lambdas,
    outputs: { loss: totalName, headLoss, correct, count, grads, ...(Object.keys(rowGrads).length ? { rowGrads } : {}) },
  };
}

/** The model around a new graph: default opset raised to 16+, GRL domain and function dropped. */
function trainingModelProto(proto: ModelProto, graph: GraphProto, opset: number): ModelProto {
  const imports = (proto.opset_import ?? []).filter((o) => o.domain !== GRL_DOMAIN && o.domain !== '' && o.domain !== 'ai.onnx' && o.domain !== undefined);
  const functions = (proto.functions ?? []).filter((f) => f.domain !== GRL_DOMAIN);
  return {
    ir_version: Math.max(toNumber(proto.ir_version), MIN_IR),
    opset_import: [{ domain: '', version: opset }, ...imports],
    producer_name: 'grl-onnx',
    producer_version: proto.producer_version,
    graph,
    functions,
    metadata_props: proto.metadata_props,
  };
}
