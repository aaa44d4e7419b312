// Gradient builder: the reverse-mode driver. It finds the nodes that lie on a
// differentiable path from the `wrt` tensors (parameters) to the seeds (the
// loss gradients), walks them in reverse topological order, applies one rule
// per node and sums the gradients of tensors with several consumers with an
// explicit Sum. Everything off those paths (shape arithmetic, masks, indices,
// Where conditions, integer chains) is never visited and needs no rule.
import { DataType, NodeProto, TensorProto } from '../onnx/proto';
import { Graph, nodeLabel, nodeReads, subgraphReads } from '../onnx/graph';
import { GraphError, GrlError } from '../onnx/errors';
import { ShapeInference, inferShapes } from '../onnx/shapes';
import { Emitter, RowGradient } from './emit';
import { makeRuleContext } from './context';
import { findRule } from './rules';
import { NON_DIFFERENTIABLE_OPS } from './rules/nonDifferentiable';
import { RuleEntry, UnsupportedOpError } from './types';

export interface DifferentiateOptions {
  /** tensor -> name of dLoss/dTensor (e.g. head logits -> the fused loss gradient). */
  seeds: Map<string, string>;
  /** Tensors (usually parameters) whose gradients are wanted, as `<tensor>_grad`. */
  wrt: string[];
  /** Version of the default ONNX domain the emitted nodes target. */
  opset: number;
  /** Shape/type inference of the graph; inferred here when omitted. */
  shapes?: ShapeInference;
}

export interface Differentiated {
  nodes: NodeProto[];
  initializers: TensorProto[];
  /** Each `wrt` tensor that has a gradient -> its gradient tensor (`<tensor>_grad`). */
  grads: Map<string, string>;
  /** The `wrt` tensors whose whole gradient is one row scatter (a Gather along axis 0), in row-sparse form. */
  rowGrads: Map<string, RowGradient>;
}

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** Unknown element types count as float: better to ask for a rule than to drop a gradient. */
function floatish(dt: number | undefined): boolean {
  return dt === undefined || dt === DataType.UNDEFINED || FLOAT_TYPES.has(dt);
}

function ruleOf(node: NodeProto): RuleEntry | undefined {
  return findRule(node.op_type ?? '', node.domain ?? '');
}

// Which edges carry gradient. The gradient builder, inspect and head detection
// (src/patch/diffpaths.ts) all decide it here, so they agree on every path.

/** Whether `node`'s outputs can carry a gradient at all (their element types aside). */
export function hasDifferentiableOutputs(node: NodeProto): boolean {
  const defaultDomain = !node.domain || node.domain === 'ai.onnx';
  return !(defaultDomain && NON_DIFFERENTIABLE_OPS.has(node.op_type ?? ''));
}

/** Whether input `i` of `node` can carry a gradient: its rule does not declare it a shape, index, axis or condition. */
export function isDifferentiableInput(node: NodeProto, i: number): boolean {
  return !ruleOf(node)?.nonDifferentiable?.includes(i);
}

/**
 * A trainable-looking tensor: a float initializer of rank >= 1. Rank-0 initializers are
 * constants (eps, 1/sqrt(d), Pow's 2, the 1.0 of `(1 - mask) * -1e4`), as exporters store them.
 */
export function isParameter(t: TensorProto): boolean {
  return FLOAT_TYPES.has(t.data_type ?? 0) && (t.dims?.length ?? 0) >= 1;
}

/** The graph's parameters (see isParameter), in initializer order. */
export function parameterNames(graph: Graph): string[] {
  return graph.initializers.filter(isParameter).map((t) => t.name ?? '');
}

/** The nodes in topological order (the stored order when it already is one, which ONNX requires). */
export function topoOrder(graph: Graph): NodeProto[] {
  const nodes = graph.nodes;
  const produced = new Set<string>();
  let sorted = true;
  for (const n of nodes) {
    if (nodeReads(n).some((i) => i && graph.producer(i) && !produced.has(i))) { sorted = false; break; }
    for (const o of n.output ?? []) if (o) produced.add(o);
  }
  if (sorted) return nodes;
  const indeg = new Map<NodeProto, number>();
  for (const n of nodes) indeg.set(n, new Set(nodeReads(n).filter((i) => i && graph.producer(i))).size);
  const queue = nodes.filter((n) => indeg.get(n) === 0);
  const order: NodeProto[] = [];
  for (let q = 0; q < queue.length; q++) {
    const n = queue[q];
    order.push(n);
    // indeg counts distinct tensors read, so each (tensor, consumer) pair counts once.
    for (const o of n.output ?? []) {
      for (const c of o ? graph.consumersOf(o) : []) {
        const d = (indeg.get(c) ?? 0) - 1;
        indeg.set(c, d);
        if (d === 0) queue.push(c);
      }
    }
  }
  if (order.length !== nodes.length) throw new GraphError('graph has a cycle; cannot differentiate it');
  return order;
}

export interface DifferentiablePath {
  /** Tensors downstream of a wrt tensor through differentiable edges. */
  downstream: Set<string>;
  /** Tensors on a path from a wrt tensor to a seed: these receive gradients. */
  onPath: Set<string>;
  /** The nodes to differentiate, in reverse topological order. */
  nodes: NodeProto[];
}

/** Forward from `wrt` along differentiable edges, then backward from `seeds`. */
export function differentiablePath(graph: Graph, wrt: Iterable<string>, seeds: Iterable<string>, shapes: { dtype(n: string): number | undefined }): DifferentiablePath {
  const order = topoOrder(graph);
  const downstream = new Set<string>(wrt);
  for (const node of order) {
    if (!hasDifferentiableOutputs(node)) continue;
    // A subgraph reading a downstream tensor (an If branch, a Loop body) makes the node active too,
    // so differentiating asks for its rule (and fails with the op's name) instead of freezing silently.
    const active = (node.input ?? []).some((x, i) => x && downstream.has(x) && isDifferentiableInput(node, i)) || subgraphReads(node).some((x) => downstream.has(x));
    if (!active) continue;
    for (const o of node.output ?? []) if (o && floatish(shapes.dtype(o))) downstream.add(o);
  }
  const onPath = new Set<string>();
  for (const s of seeds) if (downstream.has(s)) onPath.add(s);
  const nodes: NodeProto[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    if (!(node.output ?? []).some((o) => o && onPath.has(o))) continue;
    nodes.push(node);
    (node.input ?? []).forEach((x, i) => {
      if (x && downstream.has(x) && isDifferentiableInput(node, i)) onPath.add(x);
    });
    for (const x of subgraphReads(node)) if (downstream.has(x)) onPath.add(x);
  }
  return { downstream, onPath, nodes };
}

/**
 * Ops on a differentiable path that have no gradient rule (for `grl-onnx inspect`):
 * by default from every parameter (see isParameter) to every graph output.
 */
export function missingRules(graph: Graph, opts: { wrt?: string[]; targets?: string[]; opset?: number } = {}): { op: string; domain: string; nodes: string[] }[] {
  const shapes = inferShapes(graph.proto);
  const wrt = opts.wrt ?? parameterNames(graph);
  const targets = opts.targets ?? graph.graphOutputs.map((o) => o.name ?? '');
  const path = differentiablePath(graph, wrt, targets, shapes);
  const missing = new Map<string, { op: string; domain: string; nodes: string[] }>();
  for (const node of [...path.nodes].reverse()) {
    const entry = ruleOf(node);
    const tooOld = entry?.minOpset !== undefined && opts.opset !== undefined && opts.opset < entry.minOpset;
    if (entry && !tooOld) continue;
    const key = `${node.domain ?? ''}::${node.op_type}`;
    const m = missing.get(key) ?? { op: node.op_type ?? '', domain: node.domain ?? '', nodes: [] };
    m.nodes.push(nodeLabel(node));
    missing.set(key, m);
  }
  return [...missing.values()];
}

/** Build the backward graph: new nodes and constants, and `<tensor>_grad` per wrt tensor. */
export function differentiate(graph: Graph, opts: DifferentiateOptions): Differentiated {
  const shapes = opts.shapes ?? inferShapes(graph.proto);
  const wrtSet = new Set(opts.wrt);
  const path = differentiablePath(graph, opts.wrt, opts.seeds.keys(), shapes);
  const emit = new Emitter(graph, 'grad', (n) => shapeOf(n));

  // Shapes of tensors the rules emit are inferred lazily, in emission order.
  let inferredNodes = 0;
  let inferredInits = 0;
  const shapeOf = (name: string) => {
    for (; inferredInits < emit.initializers.length; inferredInits++) shapes.addInitializer(emit.initializers[inferredInits]);
    for (; inferredNodes < emit.nodes.length; inferredNodes++) shapes.addNode(emit.nodes[inferredNodes]);
    return shapes.shape(name);
  };

  const contributions = new Map<string, string[]>();
  const contribute = (tensor: string, grad: string) => {
    const list = contributions.get(tensor);
    if (list) list.push(grad);
    else contributions.set(tensor, [grad]);
    shapeOf(grad);
    shapes.alias(grad, tensor);
  };
  for (const [t, g] of opts.seeds) if (path.onPath.has(t)) contribute(t, g);

  // The complete gradient of a tensor, once every consumer has contributed.
  const finals = new Map<string, string | null>();
  const finalGrad = (tensor: string): string | null => {
    const hit = finals.get(tensor);
    if (hit !== undefined) return hit;
    const list = contributions.get(tensor) ?? [];
    let g: string | null = null;
    if (wrtSet.has(tensor) && list.length) {
      g = graph.uniqueName(`${tensor}_grad`);
      emit.nodes.push({ name: graph.uniqueName(`${g}/${list.length > 1 ? 'Sum' : 'Identity'}`), op_type: list.length > 1 ? 'Sum' : 'Identity', input: list, output: [g], attribute: [] });
      shapes.alias(g, tensor);
    } else if (list.length > 1) {
      g = graph.uniqueName(`${tensor}_grad`);
      emit.nodes.push({ name: graph.uniqueName(`${g}/Sum`), op_type: 'Sum', input: list, output: [g], attribute: [] });
      shapes.alias(g, tensor);
    } else if (list.length === 1) {
      g = list[0];
    }
    finals.set(tensor, g);
    return g;
  };

  for (const node of path.nodes) {
    const outputs = node.output ?? [];
    const gradOutputs = outputs.map((o) => (o && path.onPath.has(o) ? finalGrad(o) : null));
    if (gradOutputs.every((g) => g === null)) continue;
    const entry = ruleOf(node);
    if (!entry) throw new UnsupportedOpError(node.op_type ?? '', nodeLabel(node), opts.opset, node.domain ?? '');
    if (entry.minOpset !== undefined && opts.opset < entry.minOpset) {
      throw new GrlError(`gradient rule for ${node.op_type} needs opset ${entry.minOpset} or newer (node '${nodeLabel(node)}', opset ${opts.opset})`);
    }
    const inputs = node.input ?? [];
    const needsGrad = (i: number) => !!inputs[i] && path.onPath.has(inputs[i]) && isDifferentiableInput(node, i);
    emit.prefix = `${nodeLabel(node)}/grad`;
    const ctx = makeRuleContext({ node, opset: opts.opset, gradOutputs, needsGrad, emit, constants: graph, shape: shapeOf });
    const grads = entry.rule(ctx);
    inputs.forEach((x, i) => {
      const g = grads[i];
      if (g && needsGrad(i)) contribute(x, g);
    });
  }

  const grads = new Map<string, string>();
  const rowGrads = new Map<string, RowGradient>();
  for (const w of opts.wrt) {
    const g = path.onPath.has(w) ? finalGrad(w) : null;
    if (!g) continue;
    grads.set(w, g);
    const only = contributions.get(w) ?? [];
    const rows = only.length === 1 ? emit.rowGrads.get(only[0]) : undefined;
    if (rows) rowGrads.set(w, rows);
  }
  return { nodes: emit.nodes, initializers: emit.initializers, grads, rowGrads };
}
