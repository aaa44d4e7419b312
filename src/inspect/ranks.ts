// `grl-onnx inspect`: how every rank in the graph was obtained (static rules or
// an onnxruntime run) and, before any training run, which op leaves a rank
// unknown on a gradient path (a rank every gradient rule needs).
import type { Graph } from '../onnx/graph';
import { ObservedRanks, RankBlocker, inferShapes, rankReport } from '../onnx/shapes';
import { differentiablePath, parameterNames } from '../grad/backward';

export interface RankSummary {
  /** Node outputs whose rank static inference decided. */
  static: number;
  /** Node outputs whose rank came from an onnxruntime run (tensors static inference could not decide). */
  onnxruntime: number;
  /** Node outputs whose rank stays unknown. */
  unknown: number;
  /** Ops that leave a rank unknown on a path from a parameter to an output: training would fail there. */
  blocking: RankBlocker[];
  /** Why the onnxruntime run failed, when one was needed and failed. */
  fallbackError?: string;
}

export function summarizeRanks(graph: Graph, observed?: ObservedRanks): RankSummary {
  const shapes = inferShapes(graph.proto, observed?.hints);
  const all = rankReport(graph.proto, shapes);
  let blocking: RankBlocker[] = [];
  if (all.unknown.length) {
    const targets = graph.graphOutputs.map((o) => o.name ?? '');
    const path = differentiablePath(graph, parameterNames(graph), targets, shapes);
    // Rules need the ranks of every input and output of a node on the path (MatMul's other operand too).
    const used = new Set(path.nodes.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]));
    blocking = rankReport(graph.proto, shapes, used).blockers;
  }
  return {
    static: all.static,
    onnxruntime: all.onnxruntime,
    unknown: all.unknown.length,
    blocking,
    ...(observed?.error ? { fallbackError: observed.error } : {}),
  };
}
