// Gradient builder, training graph step 2: the losses. Each head gets its loss
// nodes (losses.ts) and, for CE, its correct/count metrics; the weighted losses are
// summed into the total, and each head output's fused loss gradient becomes a seed
// of the backward pass.
import { DataType, NodeProto, ValueInfoProto } from '../onnx/proto';
import type { Graph } from '../onnx/graph';
import type { ShapeInference } from '../onnx/shapes';
import { Emitter } from './emit';
import { LossTensors, buildLoss } from './losses';
import type { MaskedRows } from './mlm';
import { valueInfo } from './training-proto';
import type { ResolvedLoss } from './training-forward';
import type { TrainingGraph } from './training';

export type LossHead = TrainingGraph['heads'][number];

/**
 * The heads as TrainingGraph lists them, and their label inputs: class ids (int64, the
 * logits' shape without the class axis) for CE, targets shaped like the output for MSE.
 */
export function lossHeads(losses: ResolvedLoss[], preShapes: ShapeInference): { heads: LossHead[]; labelVI: ValueInfoProto[] } {
  const heads: LossHead[] = [];
  const labelVI: ValueInfoProto[] = [];
  for (const h of losses) {
    const outShape = preShapes.shape(h.output);
    const classes = outShape?.[outShape.length - 1];
    const numClasses = h.kind === 'ce' && typeof classes === 'number' ? classes : undefined;
    heads.push({ head: h.head, labelInput: h.labelInput, output: h.output, kind: h.kind, weight: h.weight, tokenLevel: h.kind === 'ce' && (outShape?.length ?? 0) >= 3, numClasses });
    labelVI.push(h.kind === 'ce' ? valueInfo(h.labelInput, DataType.INT64, outShape?.slice(0, -1)) : valueInfo(h.labelInput, DataType.FLOAT, outShape));
  }
  return { heads, labelVI };
}

export interface LossNodes {
  /** The loss nodes and constants (also added to the graph). */
  emit: Emitter;
  losses: Map<string, LossTensors>;
  /** The total loss: the weighted sum of the head losses. */
  total: string;
}

/** Add every head's loss, and their weighted sum, to `graph`. */
export function addLossNodes(graph: Graph, heads: LossHead[], masked: MaskedRows | undefined): LossNodes {
  const emit = new Emitter(graph, 'loss');
  const losses = new Map<string, LossTensors>();
  for (const h of heads) {
    emit.prefix = `loss.${h.head}`;
    const names = { loss: graph.uniqueName(`loss.${h.head}`), correct: h.kind === 'ce' ? graph.uniqueName(`correct.${h.head}`) : undefined, count: h.kind === 'ce' ? graph.uniqueName(`count.${h.head}`) : undefined };
    const labels = masked?.labels.get(h.head) ?? h.labelInput;
    losses.set(h.head, buildLoss(emit, { head: h.head, kind: h.kind, output: h.output, labels, weight: h.weight, numClasses: h.numClasses }, names));
  }
  emit.prefix = 'loss';
  const weighted = heads.map((h) => (h.weight === 1 ? (losses.get(h.head) as LossTensors).loss : emit.op('Mul', [(losses.get(h.head) as LossTensors).loss, emit.float(h.weight, 'weight')], undefined, `weighted.${h.head}`)));
  const total = graph.uniqueName('loss');
  emit.nodes.push({ name: graph.uniqueName('loss/Sum'), op_type: 'Sum', input: weighted, output: [total], attribute: [] });
  for (const t of emit.initializers) graph.addInitializer(t);
  for (const n of emit.nodes) graph.addNode(n);
  return { emit, losses, total };
}

/** Seeds: one fused loss gradient per head output (summed if two losses share an output). */
export function lossSeeds(graph: Graph, heads: LossHead[], losses: Map<string, LossTensors>): { seeds: Map<string, string>; nodes: NodeProto[] } {
  const seedLists = new Map<string, string[]>();
  for (const h of heads) seedLists.set(h.output, [...(seedLists.get(h.output) ?? []), (losses.get(h.head) as LossTensors).seed]);
  const nodes: NodeProto[] = [];
  const seeds = new Map<string, string>();
  for (const [out, list] of seedLists) {
    if (list.length === 1) { seeds.set(out, list[0]); continue; }
    const g = graph.uniqueName(`${out}_grad`);
    nodes.push(graph.add('Sum', list, [g], { name: graph.uniqueName(`${g}/Sum`) }));
    seeds.set(out, g);
  }
  return { seeds, nodes };
}

export interface MetricOutputs {
  headLoss: Record<string, string>;
  correct: Record<string, string>;
  count: Record<string, string>;
  /** The scalar outputs: total loss, each head's loss, then each CE head's correct and count. */
  valueInfo: ValueInfoProto[];
}

export function metricOutputs(heads: LossHead[], losses: Map<string, LossTensors>, total: string): MetricOutputs {
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
  const vi = [
    scalar(total),
    ...heads.map((h) => scalar(headLoss[h.head])),
    ...heads.filter((h) => correct[h.head]).flatMap((h) => [scalar(correct[h.head]), scalar(count[h.head])]),
  ];
  return { headLoss, correct, count, valueInfo: vi };
}
