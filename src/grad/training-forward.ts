// Gradient builder, training graph step 1: the forward the training graph runs.
// Loss heads are resolved and given label inputs, GRL nodes read λ from a graph
// input, decomposed LayerNorms and erf-GELUs are fused (fuse.ts), and MLM heads
// run on the masked rows only (mlm.ts). Every new name avoids the `taken` ones.
import type { Model } from '../onnx/io';
import { GraphProto, NodeProto } from '../onnx/proto';
import { GrlError } from '../onnx/errors';
import { attrFloat } from '../onnx/attrs';
import { ShapeInference, inferShapes } from '../onnx/shapes';
import { analyzeHeads, grlHeadAttr, isGrlNode, resolveHead } from '../patch/heads';
import type { LossKind } from './losses';
import { GELU_OPSET, LAYER_NORM_OPSET, FuseSource, fuseGelus, fuseLayerNorms, opsetRaiseBlockers } from './fuse';
import { MaskedRows, gatherMlmRows } from './mlm';
import { usedNames } from './training-proto';
import type { LossOption, TrainingGraph, TrainingGraphOptions } from './training';

/** A loss head resolved against the model: the tensor it reads and the graph input of its labels. */
export interface ResolvedLoss {
  head: string;
  labelInput: string;
  output: string;
  weight: number;
  kind: LossKind;
}

/**
 * Heads are resolved like `grl-onnx patch --head`; a plain graph output name is accepted
 * too. Each head's label input gets its name (added to `taken`).
 */
export function resolveLosses(model: Model, losses: LossOption[], taken: Set<string>, graphOutputs: Set<string>): ResolvedLoss[] {
  const where = model.source;
  const nodeOutputs = new Set((model.proto.graph?.node ?? []).flatMap((n) => n.output ?? []));
  const analysis = analyzeHeads(model);
  const resolved = losses.map((l) => {
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
  return resolved;
}

export interface LambdaInputs {
  /** The forward nodes, each GRL replaced by a copy that reads its λ input. */
  nodes: NodeProto[];
  lambdas: TrainingGraph['lambdas'];
  /** Those GRL copies (they become Identity nodes in the final graphs). */
  grlNodes: Set<NodeProto>;
}

/** GRL nodes read λ from a graph input so schedules can change it every step. */
export function lambdaInputs(src: GraphProto, taken: Set<string>, where: string): LambdaInputs {
  const lambdas: TrainingGraph['lambdas'] = [];
  const grlNodes = new Set<NodeProto>();
  const nodes = (src.node ?? []).map((n) => {
    if (!isGrlNode(n)) return n;
    const head = grlHeadAttr(n) || n.name || n.output?.[0] || 'grl';
    let input = `grl.${head}.lambda`;
    if (taken.has(input)) input = `grl.${n.name || n.output?.[0]}.lambda`;
    if (taken.has(input)) throw new GrlError(`${where}: two GradientReversal nodes would share the λ input '${input}'`, { file: where });
    taken.add(input);
    lambdas.push({ head, input, node: n.name ?? '', default: attrFloat(n, 'lambda', 1) });
    const copy: NodeProto = { ...n, input: [n.input?.[0] ?? '', input] };
    grlNodes.add(copy);
    return copy;
  });
  return { nodes, lambdas, grlNodes };
}

export interface Forward {
  nodes: NodeProto[];
  /** The default-domain opset the training graphs import (raised by the fusions). */
  opset: number;
  /** The MLM heads narrowed to their masked rows, if any. */
  masked?: MaskedRows;
  /** Shapes of the source graph, before any node was added. */
  preShapes: ShapeInference;
}

/** What the fusions read of the source graph; new names avoid every existing one. */
function fuseSource(src: GraphProto, shapes: ShapeInference, taken: Set<string>): FuseSource {
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

/** Fuse and narrow the forward `nodes`; the opset starts at `opset` and rises with what was fused. */
export function prepareForward(model: Model, nodes: NodeProto[], losses: ResolvedLoss[], graphOutputs: Set<string>, taken: Set<string>, opts: TrainingGraphOptions, modelOpset: number, opset: number): Forward {
  const src = model.proto.graph ?? {};
  // The LayerNorm decompositions of pre-17 exports become LayerNormalization nodes (fuse.ts).
  const preShapes = inferShapes(src, opts.shapeHints);
  const fuseSrc = fuseSource(src, preShapes, taken);
  const fusion = opts.fuseLayerNorm === false ? { nodes, fused: 0 } : fuseLayerNorms(nodes, graphOutputs, fuseSrc);
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
    : gatherMlmRows(model, fwdNodes, losses, graphOutputs, (t) => preShapes.shape(t), fuseSrc);
  if (masked) fwdNodes = masked.nodes;
  return { nodes: fwdNodes, opset, masked, preShapes };
}
