// Patch, step 1: find the task heads of an exported multi-task model and where
// each head's branch leaves the shared trunk (the splice point for a GRL).
//
// A head is a graph output with nodes of its own: nodes that only that output
// depends on. Its splice tensor is the differentiable tensor, produced by a
// shared node, that those exclusive nodes read. In a single-output model
// nothing is shared, so the splice is the input of the final projection.
// GradientReversal nodes already in the graph belong to the head they feed.
import type { Model } from '../onnx/io';
import { NodeProto } from '../onnx/proto';
import { Graph } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { attrFloat, attrString } from '../onnx/attrs';
import { GRL_DOMAIN, GRL_OP } from './grl';
import { differentiableTensors, isDifferentiableInput } from './diffpaths';
import { encoderOutputs } from '../heads/encoder';

export interface GrlInfo {
  /** Node name of the GradientReversal node. */
  node: string;
  lambda: number;
  /** The tensor it reads (where it is spliced) and the tensor it writes. */
  input: string;
  output: string;
}

export interface HeadInfo {
  /** The output name without `_logits` / `logits_`. */
  name: string;
  output: string;
  /** Number of nodes only this output depends on (GRL nodes not counted). */
  exclusiveNodes: number;
  /** Where the head's branch leaves the shared trunk: the default GRL splice point. */
  spliceTensor: string;
  /** The GRL already spliced into this head, if any. */
  grl?: GrlInfo;
  /** Other differentiable tensors the branch reads from the trunk (a GRL on spliceTensor does not cover them). */
  otherTrunkInputs: string[];
}

export function isGrlNode(n: NodeProto): boolean {
  return n.op_type === GRL_OP && n.domain === GRL_DOMAIN;
}

export function headNameOf(output: string): string {
  if (output.length > 7 && output.endsWith('_logits')) return output.slice(0, -7);
  if (output.length > 7 && output.startsWith('logits_')) return output.slice(7);
  return output;
}

/** Everything head detection learns about a graph; patch reuses it to rewire edges. */
export interface HeadAnalysis {
  graph: Graph;
  heads: HeadInfo[];
  /** For each node, the graph outputs that depend on it. */
  outputsOf: Map<NodeProto, string[]>;
  /** Outputs that are not heads: the encoder's own outputs, outputs with no node of their own (part of the shared trunk), or not differentiable. */
  trunkOutputs: string[];
  /** The encoder's own outputs (last_hidden_state, pooler_output); also in trunkOutputs. */
  encoderOutputs: Set<string>;
  diff: Set<string>;
}

export function analyzeHeads(model: Model, graph = new Graph(model.proto.graph ?? {})): HeadAnalysis {
  const outputs = graph.graphOutputs.map((o) => o.name ?? '').filter((o) => graph.producer(o));
  const outputsOf = new Map<NodeProto, string[]>();
  for (const o of outputs) {
    for (const n of graph.ancestors(o)) {
      const list = outputsOf.get(n);
      if (list) list.push(o);
      else outputsOf.set(n, [o]);
    }
  }
  const diff = differentiableTensors(graph);
  const position = new Map(graph.nodes.map((n, i) => [n, i]));
  const heads: HeadInfo[] = [];
  const trunkOutputs: string[] = [];
  // The encoder's own outputs (last_hidden_state, pooler_output) are the trunk, not task heads.
  const encoder = encoderOutputs(model, graph);
  for (const o of outputs) {
    if (encoder.has(o)) {
      trunkOutputs.push(o);
      continue;
    }
    const exclusive = graph.nodes.filter((n) => outputsOf.get(n)?.length === 1 && outputsOf.get(n)?.[0] === o);
    const own = exclusive.filter((n) => !isGrlNode(n));
    // An output with no node of its own, or one no gradient can flow from (a shape), is not a head.
    if (!own.length || !diff.has(o)) {
      trunkOutputs.push(o);
      continue;
    }
    const grlNode = exclusive.find(isGrlNode);
    const grl = grlNode ? grlInfo(grlNode) : undefined;
    const mine = new Set(exclusive);
    // With nothing shared (a single-output model) there is no boundary: use the final projection.
    const trunkInputs = boundaryTensors(graph, exclusive, mine, diff, position);
    // Several trunk tensors (e.g. two layers' states): the deepest one is the main path.
    let splice = trunkInputs.length ? trunkInputs[trunkInputs.length - 1] : finalProjectionInput(graph, exclusive) ?? '';
    const p = graph.producer(splice);
    if (p && isGrlNode(p)) splice = p.input?.[0] ?? splice;
    heads.push({
      name: headNameOf(o),
      output: o,
      exclusiveNodes: own.length,
      spliceTensor: splice,
      grl,
      otherTrunkInputs: trunkInputs.filter((t) => t !== splice),
    });
  }
  return { graph, heads, outputsOf, trunkOutputs, encoderOutputs: encoder, diff };
}

/** Differentiable tensors from shared nodes that the head's exclusive nodes read, in graph order. */
function boundaryTensors(graph: Graph, exclusive: NodeProto[], mine: Set<NodeProto>, diff: Set<string>, position: Map<NodeProto, number>): string[] {
  const found = new Set<string>();
  for (const n of exclusive) {
    (n.input ?? []).forEach((t, i) => {
      if (!t || !diff.has(t) || !isDifferentiableInput(n, i)) return;
      const p = graph.producer(t);
      if (p && !mine.has(p)) found.add(t);
    });
  }
  return [...found].sort((a, b) => (position.get(graph.producer(a) as NodeProto) ?? 0) - (position.get(graph.producer(b) as NodeProto) ?? 0));
}

/** The data input of the last MatMul/Gemm that multiplies by a weight initializer. */
function finalProjectionInput(graph: Graph, nodes: NodeProto[]): string | undefined {
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (n.op_type !== 'MatMul' && n.op_type !== 'Gemm') continue;
    const [a, b] = n.input ?? [];
    if (b && isWeight(graph, b)) return a;
    if (a && isWeight(graph, a)) return b;
  }
  return undefined;
}

function isWeight(graph: Graph, t: string): boolean {
  if (graph.initializer(t)) return true;
  const p = graph.producer(t);
  // torch sometimes exports `x @ W.T` as Transpose(initializer) -> MatMul.
  return !!p && (p.op_type === 'Transpose' || p.op_type === 'Identity') && !!p.input?.[0] && !!graph.initializer(p.input[0]);
}

export function grlInfo(n: NodeProto): GrlInfo {
  return { node: n.name ?? '', lambda: attrFloat(n, 'lambda', 1), input: n.input?.[0] ?? '', output: n.output?.[0] ?? '' };
}

/** The GRL's `head` attribute, when present. */
export function grlHeadAttr(n: NodeProto): string | undefined {
  return attrString(n, 'head');
}

export function detectHeads(model: Model): HeadInfo[] {
  return analyzeHeads(model).heads;
}

/** Whether a node name like `/heads.pos/MatMul`) has a module segment named `name`. */
function inScope(nodeName: string | undefined, name: string): boolean {
  if (!nodeName) return false;
  const segments = nodeName.split('/').slice(0, -1);
  return segments.some((s) => s === name || s.endsWith(`.${name}`));
}

/**
 * Find a head by user-given name: an output name, `pos` for `pos_logits`/`logits_pos`, or
 * the module scope of the output's producing node (`/pos/...`, `/heads.pos/...`).
 * Exact output names win over stripped names, which win over scopes.
 */
export function resolveHead(model: Model, name: string, analysis = analyzeHeads(model)): HeadInfo {
  const { heads, graph, trunkOutputs } = analysis;
  const tiers: ((h: HeadInfo) => boolean)[] = [
    (h) => h.output === name,
    (h) => h.name === name || h.output === `${name}_logits` || h.output === `logits_${name}`,
    (h) => inScope(graph.producer(h.output)?.name, name),
  ];
  for (const match of tiers) {
    const found = heads.filter(match);
    if (found.length === 1) return found[0];
    if (found.length > 1) {
      throw new GrlError(`${model.source}: head '${name}' is ambiguous: it matches outputs ${found.map((h) => `'${h.output}'`).join(', ')}; name the output instead`, { file: model.source });
    }
  }
  if (trunkOutputs.includes(name)) {
    throw new GrlError(`${model.source}: output '${name}' is not a head (it is the encoder's own output, has no nodes of its own, or carries no gradient); available heads: ${listHeads(heads)}`, { file: model.source });
  }
  throw new GrlError(`${model.source}: no head '${name}'; available heads: ${listHeads(heads)}`, { file: model.source });
}

function listHeads(heads: HeadInfo[]): string {
  if (!heads.length) return '(none: the model has no output with a branch of its own)';
  return heads.map((h) => (h.name === h.output ? h.name : `${h.name} (${h.output})`)).join(', ');
}
