// `grl-onnx inspect`: a typed report of what a model is and what grl-onnx will
// do with it (heads and splice points, GRLs present, ops lacking a gradient
// rule), plus warnings about exporter traps such as merged initializers.
// The report is plain data; src/cli/commands/inspect.ts renders it.
import type { Model } from '../onnx/io';
import { TypeProto, ValueInfoProto, toNumber } from '../onnx/proto';
import { Graph } from '../onnx/graph';
import { dataTypeName, dimsOf, isExternal, isFloatType, numElements, tensorByteLength } from '../onnx/tensor';
import { analyzeHeads, grlHeadAttr, grlInfo, isGrlNode } from '../patch/heads';
import { missingRules } from '../grad/backward';
import { hiddenStates } from '../heads/encoder';
import { readLabelNames } from '../heads/labels';
import type { ObservedRanks } from '../onnx/shapes';
import { RankSummary, summarizeRanks } from './ranks';
import { EraserRecord, readErasers } from '../erase/records';
import { findingText, validateModel } from '../onnx/validate';

export type ShapeDim = number | string | null;

export interface TensorSummary {
  name: string;
  /** Element type (`FLOAT`, `INT64`, ...), or `unknown`. */
  type: string;
  /** Dimensions: numbers, symbolic names, or null when unnamed; null when the rank is unknown. */
  shape: ShapeDim[] | null;
}

export interface SharedInitializer {
  initializer: string;
  shape: number[];
  layers: string[];
  message: string;
}

export interface InspectReport {
  file: string;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: { name: string; version: string };
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  nodeCount: number;
  /** Elements of float initializers (trainable-looking tensors). */
  parameters: number;
  /** Bytes of all initializers, and how many of them are stored externally. */
  initializerBytes: number;
  initializerCount: number;
  externalInitializers: number;
  /** Op histogram, most frequent first; custom domains are written `domain::Op`. */
  ops: { op: string; count: number }[];
  heads: { name: string; output: string; exclusiveNodes: number; spliceTensor: string; grl?: { node: string; lambda: number; at: string }; labels?: string[] }[];
  /** Outputs that are the encoder itself (last_hidden_state, pooler_output), not task heads. */
  encoderOutputs: string[];
  /** Per layer, the hidden states [batch, sequence, d] a head can read (`heads add --from`). */
  hiddenStates: { layer: string; tensor: string; shape: ShapeDim[] }[];
  grls: { node: string; head: string; lambda: number; input: string }[];
  /** Concept erasers spliced by `grl-onnx erase`, with what they were fit on. */
  erasers: EraserRecord[];
  sharedInitializers: SharedInitializer[];
  /** Ops on a path from a parameter to an output that have no gradient rule yet. */
  missingGradientRules: { op: string; domain: string; nodes: string[] }[];
  /** How each node output's rank was obtained, and the ops leaving a rank on a gradient path unknown. */
  ranks: RankSummary;
  warnings: string[];
  /** Checker findings (src/onnx/validate.ts): commands that write refuse a model that has any. */
  problems: string[];
}

/**
 * The report. `observed` are the shapes an onnxruntime run gave for tensors whose rank static
 * inference leaves unknown (observeUnknownRanks, async; the CLI passes them).
 */
export function inspectModel(model: Model, observed?: ObservedRanks): InspectReport {
  const problems = validateModel(model).map(findingText);
  const p = model.proto;
  const graph = new Graph(p.graph ?? {});
  const analysis = analyzeHeads(model, graph);
  const warnings: string[] = [];
  const inits = graph.initializers;
  const initNames = new Set(inits.map((t) => t.name ?? ''));

  const histogram = new Map<string, number>();
  for (const n of graph.nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.op_type}` : n.op_type ?? '?';
    histogram.set(key, (histogram.get(key) ?? 0) + 1);
  }

  const shared = sharedInitializers(graph);
  for (const s of shared) warnings.push(s.message);
  for (const h of analysis.heads) {
    if (h.otherTrunkInputs.length) {
      warnings.push(`head '${h.name}' also reads ${h.otherTrunkInputs.map((t) => `'${t}'`).join(', ')} from the trunk; a GRL at '${h.spliceTensor}' does not reverse the gradient through those`);
    }
  }

  let missing: InspectReport['missingGradientRules'];
  try {
    missing = missingRules(graph, { opset: toNumber(p.opset_import?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version) });
  } catch (e) {
    missing = [];
    warnings.push(`could not trace gradient paths: ${(e as Error).message}`);
  }

  return {
    file: model.source,
    irVersion: toNumber(p.ir_version),
    opsets: (p.opset_import ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toNumber(o.version) })),
    producer: { name: p.producer_name ?? '', version: p.producer_version ?? '' },
    inputs: graph.graphInputs.filter((i) => !initNames.has(i.name ?? '')).map(summarize),
    outputs: graph.graphOutputs.map(summarize),
    nodeCount: graph.nodes.length,
    parameters: inits.filter((t) => isFloatType(t.data_type ?? 0)).reduce((a, t) => a + numElements(dimsOf(t)), 0),
    initializerBytes: inits.reduce((a, t) => a + tensorByteLength(t), 0),
    initializerCount: inits.length,
    externalInitializers: inits.filter(isExternal).length,
    ops: [...histogram].map(([op, count]) => ({ op, count })).sort((a, b) => b.count - a.count || a.op.localeCompare(b.op)),
    heads: analysis.heads.map((h) => ({
      name: h.name, output: h.output, exclusiveNodes: h.exclusiveNodes, spliceTensor: h.spliceTensor,
      ...(h.grl ? { grl: { node: h.grl.node, lambda: h.grl.lambda, at: h.grl.input } } : {}),
      ...labelsOf(model, h.name),
    })),
    encoderOutputs: analysis.trunkOutputs.filter((o) => analysis.encoderOutputs.has(o)),
    hiddenStates: hiddenStates(graph),
    grls: graph.nodes.filter(isGrlNode).map((n) => {
      const g = grlInfo(n);
      return { node: g.node, head: grlHeadAttr(n) ?? '', lambda: g.lambda, input: g.input };
    }),
    erasers: readErasers(p),
    sharedInitializers: shared,
    missingGradientRules: missing,
    ranks: summarizeRanks(graph, observed),
    warnings,
    problems,
  };
}

function labelsOf(model: Model, head: string): { labels?: string[] } {
  const names = readLabelNames(model, head);
  return names ? { labels: names } : {};
}

function summarize(v: ValueInfoProto): TensorSummary {
  return { name: v.name ?? '', type: typeName(v.type), shape: shapeOf(v.type) };
}

function typeName(t: TypeProto | undefined): string {
  const elem = t?.tensor_type?.elem_type;
  if (elem) return dataTypeName(elem);
  if (t?.sequence_type) return 'sequence';
  if (t?.map_type) return 'map';
  if (t?.optional_type) return 'optional';
  return 'unknown';
}

function shapeOf(t: TypeProto | undefined): ShapeDim[] | null {
  const shape = t?.tensor_type?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => (d.dim_param ? d.dim_param : d.dim_value !== undefined && d.dim_value !== null ? toNumber(d.dim_value) : null));
}

/**
 * The layer a node belongs to, from torch's module-path node names: `/encoder/layer.3/...`
 * -> `encoder/layer.3`; nodes outside numbered layers belong to their top-level module.
 */
export function layerOf(nodeName: string | undefined): string {
  const segments = (nodeName ?? '').split('/').filter(Boolean).slice(0, -1);
  const k = segments.findIndex((s) => /\.\d+$/.test(s));
  if (k >= 0) return segments.slice(0, k + 1).join('/');
  return segments[0] ?? '(top level)';
}

/**
 * Initializers feeding nodes of several layers. torch's exporter merges initializers with
 * identical values, so freshly initialised LayerNorm weights (all ones) become one tensor
 * shared by every LayerNorm; training would then tie them. Scalars are legitimately shared.
 */
function sharedInitializers(graph: Graph): SharedInitializer[] {
  const out: SharedInitializer[] = [];
  for (const t of graph.initializers) {
    const dims = dimsOf(t);
    if (!isFloatType(t.data_type ?? 0) || numElements(dims) <= 1) continue;
    const layers = [...new Set(graph.consumersOf(t.name ?? '').map((n) => layerOf(n.name)))];
    if (layers.length < 2) continue;
    const shown = layers.length > 4 ? `${layers.slice(0, 4).join(', ')}, ... (${layers.length} in all)` : layers.join(', ');
    out.push({
      initializer: t.name ?? '',
      shape: dims,
      layers,
      message: `initializer '${t.name}' [${dims.join(', ')}] feeds nodes of ${layers.length} different layers (${shown}); torch's exporter merges initializers with identical values, so perturb weights before export unless the sharing is intended`,
    });
  }
  return out;
}

