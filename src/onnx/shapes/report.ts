// Shape inference, part 8: which node outputs have a known rank, how each
// became known, and for each one still unknown the op that blocked it (the
// first node on its producer chain whose inputs all have known ranks).
import type { GraphProto, NodeProto } from '../proto';
import type { ShapeInference } from './inference';

export interface RankBlocker {
  /** The node whose rule could not decide its output's rank, though its inputs' ranks are known. */
  node: string;
  op: string;
  domain: string;
  /** Node outputs whose rank stays unknown because of this node (its own included). */
  tensors: number;
  /** One of them, for messages. */
  example: string;
}

export interface RankReport {
  /** Node outputs whose rank the static rules decided (or value_info declared). */
  static: number;
  /** Node outputs whose rank came from an onnxruntime run. */
  onnxruntime: number;
  /** Node outputs whose rank stays unknown. */
  unknown: string[];
  blockers: RankBlocker[];
}

/** The rank report over the graph's node outputs (top level; subgraph bodies are not ranked). */
export function rankReport(graph: GraphProto, shapes: ShapeInference, only?: ReadonlySet<string>): RankReport {
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const report: RankReport = { static: 0, onnxruntime: 0, unknown: [], blockers: [] };
  const byNode = new Map<NodeProto, RankBlocker>();
  const blockerOf = new Map<string, NodeProto>();
  const findBlocker = (tensor: string): NodeProto | undefined => {
    const hit = blockerOf.get(tensor);
    if (hit) return hit;
    // Walk up through producers with an unknown-rank input; iterative, for deep graphs.
    let node = producer.get(tensor);
    const seen = new Set<NodeProto>();
    while (node && !seen.has(node)) {
      seen.add(node);
      const up = (node.input ?? []).find((i) => i && producer.has(i) && !shapes.shape(i));
      if (!up) break;
      node = producer.get(up);
    }
    if (node) blockerOf.set(tensor, node);
    return node;
  };
  for (const n of graph.node ?? []) {
    for (const o of n.output ?? []) {
      if (!o || (only && !only.has(o))) continue;
      const src = shapes.rankSource(o);
      if (src === 'static') report.static++;
      else if (src === 'onnxruntime') report.onnxruntime++;
      else {
        report.unknown.push(o);
        const b = findBlocker(o) ?? n;
        const entry = byNode.get(b) ?? { node: b.name || b.output?.[0] || '', op: b.op_type ?? '', domain: b.domain ?? '', tensors: 0, example: o };
        entry.tensors++;
        byNode.set(b, entry);
      }
    }
  }
  report.blockers = [...byNode.values()];
  return report;
}
