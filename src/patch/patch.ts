// Patch, step 2: splice (or remove) one GradientReversal node per head.
//
// The input model is not modified: nodes are copied (cheap), initializers are
// shared (their bytes stay views of the file buffer). A GRL is added right
// before the first node it feeds and only that head's exclusive consumers are
// rewired, so no other head's gradient is reversed. Removing a GRL undoes
// exactly that, so patch + remove gives back the original bytes.
import type { Model } from '../onnx/io';
import { FunctionProto, ModelProto, NodeProto, AttrType, toNumber } from '../onnx/proto';
import { Graph, nodeLabel, opsetVersion, subgraphReads } from '../onnx/graph';
import { GrlError, GraphError } from '../onnx/errors';
import { A, setAttr } from '../onnx/attrs';
import { GRL_DOMAIN, GRL_DOMAIN_VERSION, GRL_OP } from './grl';
import { HeadAnalysis, HeadInfo, analyzeHeads, isGrlNode, resolveHead } from './heads';

export interface HeadSpec {
  name: string;
  /** λ for this head; defaults to PatchOptions.lambda, then 1. */
  lambda?: number;
}

export interface PatchOptions {
  heads?: HeadSpec[];
  /** Default λ for heads given without one (default 1). */
  lambda?: number;
  /** Splice at this tensor instead of the detected splice point (one head only). */
  at?: string;
  /** Remove the GRLs of the named heads, or all GRLs when no head is named. */
  remove?: boolean;
}

export type PatchAction = 'added' | 'updated' | 'unchanged' | 'moved' | 'removed';

export interface PatchedHead {
  head: string;
  output: string;
  action: PatchAction;
  lambda?: number;
  /** The tensor the GRL reads. */
  spliceTensor: string;
  grlNode: string;
  grlOutput: string;
  /** Nodes now reading the GRL's output (for `removed`: reading the splice tensor again). */
  rewired: string[];
}

export interface PatchResult {
  model: Model;
  heads: PatchedHead[];
  /** Things the caller may want to tell the user (e.g. a negative λ). Never printed here. */
  warnings: string[];
}

/** Records the IR version we raised from, so removing the last GRL restores it. */
const IR_BEFORE_KEY = 'grl-onnx.ir_version_before_patch';
/** Model-local functions need IR 8. */
const MIN_IR_FOR_FUNCTIONS = 8;

export function patchModel(model: Model, opts: PatchOptions): PatchResult {
  const proto = copyForSurgery(model.proto);
  const out: Model = { ...model, proto };
  const graph = new Graph(proto.graph ?? {});
  const warnings: string[] = [];
  const done: PatchedHead[] = [];
  const specs = opts.heads ?? [];

  if (opts.remove) {
    if (!specs.length) {
      for (const n of graph.nodes.filter(isGrlNode)) done.push(unsplice(graph, n, headOfGrl(out, graph, n)));
    } else {
      for (const spec of specs) {
        const info = resolveHead(out, spec.name, analyzeHeads(out, graph));
        const node = info.grl && graph.nodes.find((n) => isGrlNode(n) && n.name === info.grl?.node);
        if (!node) warnings.push(`head '${info.name}' has no GRL; nothing to remove`);
        else done.push(unsplice(graph, node, info));
      }
    }
  } else {
    if (!specs.length) throw new GrlError(`${model.source}: name at least one head to patch`, { file: model.source });
    if (opts.at !== undefined && specs.length !== 1) throw new GrlError(`${model.source}: --at applies to one head; give a single --head with it`, { file: model.source });
    for (const spec of specs) {
      const lambda = spec.lambda ?? opts.lambda ?? 1;
      if (!Number.isFinite(lambda)) throw new GrlError(`${model.source}: λ for head '${spec.name}' must be a finite number, got ${lambda}`, { file: model.source });
      done.push(patchHead(out, graph, spec.name, lambda, opts.at));
      if (lambda < 0) warnings.push(`head '${spec.name}': λ=${lambda} is negative, so the trunk gets this head's ordinary (not reversed) gradient`);
    }
  }

  syncGrlDeclarations(proto, graph);
  try {
    graph.validate();
  } catch (e) {
    throw new GraphError(`${model.source}: patching produced an invalid graph: ${(e as Error).message}`);
  }
  return { model: out, heads: done, warnings };
}

/** A shallow copy whose node list, node inputs and model-level lists can be edited freely. */
export function copyForSurgery(p: ModelProto): ModelProto {
  const g = p.graph ?? {};
  return {
    ...p,
    opset_import: [...(p.opset_import ?? [])],
    functions: [...(p.functions ?? [])],
    metadata_props: [...(p.metadata_props ?? [])],
    graph: {
      ...g,
      node: (g.node ?? []).map((n) => ({ ...n, input: [...(n.input ?? [])], attribute: [...(n.attribute ?? [])] })),
      value_info: [...(g.value_info ?? [])],
    },
  };
}

function patchHead(model: Model, graph: Graph, name: string, lambda: number, at?: string): PatchedHead {
  let analysis = analyzeHeads(model, graph);
  let info = resolveHead(model, name, analysis);
  const target = at ?? info.spliceTensor;
  if (!target) throw new GrlError(`${model.source}: cannot tell where head '${info.name}' leaves the shared trunk; give --at TENSOR`, { file: model.source });
  let moved = false;
  if (info.grl) {
    const node = graph.nodes.find((n) => isGrlNode(n) && n.name === info.grl?.node) as NodeProto;
    if (info.grl.input === target) {
      const action: PatchAction = Math.fround(info.grl.lambda) === Math.fround(lambda) ? 'unchanged' : 'updated';
      setAttr(node, 'lambda', A.float(Math.fround(lambda)));
      setAttr(node, 'head', A.string(info.name));
      const rewired = graph.consumersOf(info.grl.output).map((n) => n.name ?? '');
      return { head: info.name, output: info.output, action, lambda, spliceTensor: target, grlNode: info.grl.node, grlOutput: info.grl.output, rewired };
    }
    unsplice(graph, node, info);
    moved = true;
    analysis = analyzeHeads(model, graph);
    info = resolveHead(model, name, analysis);
  }
  return { ...splice(model, analysis, info, target, lambda), action: moved ? 'moved' : 'added' };
}

/** Insert the GRL on the edges from `tensor` into the head's own nodes. */
function splice(model: Model, analysis: HeadAnalysis, info: HeadInfo, tensor: string, lambda: number): PatchedHead {
  const { graph, outputsOf } = analysis;
  const where = `${model.source}: head '${info.name}'`;
  if (graph.initializer(tensor)) throw new GrlError(`${where}: '${tensor}' is an initializer (a weight); a GRL goes on an activation`, { file: model.source });
  if (!graph.producer(tensor) && !graph.isGraphInput(tensor)) throw new GrlError(`${where}: no tensor '${tensor}' in the graph`, { file: model.source });
  const onPath = graph.consumersOf(tensor).filter((n) => outputsOf.get(n)?.includes(info.output));
  if (!onPath.length) throw new GrlError(`${where}: tensor '${tensor}' is not upstream of output '${info.output}'`, { file: model.source });
  const own = onPath.filter((n) => outputsOf.get(n)?.length === 1);
  // A GRL rewires explicit inputs only; a subgraph reading the tensor would bypass it.
  const implicit = own.find((n) => subgraphReads(n).includes(tensor));
  if (implicit) throw new GrlError(`${where}: '${tensor}' is read inside a subgraph of node ${nodeLabel(implicit)} (${implicit.op_type}); a GRL cannot be spliced there. Pick a tensor the head's nodes take as an input`, { file: model.source });
  if (!own.length) {
    const others = [...new Set(onPath.flatMap((n) => outputsOf.get(n) ?? []))].filter((o) => o !== info.output);
    throw new GrlError(`${where}: tensor '${tensor}' is in the shared trunk (its consumers also feed ${others.map((o) => `'${o}'`).join(', ')}); a GRL there would reverse their gradient too. Pick a tensor inside the head's branch`, { file: model.source });
  }
  const grlOutput = graph.uniqueName(`${tensor}/grl/${info.name}`);
  const grlNode = graph.uniqueName(`${info.name}/grl`);
  const index = Math.min(...own.map((n) => graph.nodes.indexOf(n)));
  graph.add(GRL_OP, [tensor], [grlOutput], { name: grlNode, domain: GRL_DOMAIN, index, attrs: { lambda: A.float(Math.fround(lambda)), head: A.string(info.name) } });
  for (const n of own) graph.rewireInput(n, tensor, grlOutput);
  return { head: info.name, output: info.output, action: 'added', lambda, spliceTensor: tensor, grlNode, grlOutput, rewired: own.map((n) => n.name ?? '') };
}

/** Take a GRL out: its consumers read its input again. */
function unsplice(graph: Graph, node: NodeProto, info: HeadInfo | undefined): PatchedHead {
  const input = node.input?.[0] ?? '';
  const output = node.output?.[0] ?? '';
  if (graph.isGraphOutput(output)) throw new GraphError(`GRL node '${node.name}' writes graph output '${output}'; cannot remove it`);
  const consumers = [...graph.consumersOf(output)];
  for (const c of consumers) graph.rewireInput(c, output, input);
  const vi = graph.proto.value_info ?? [];
  graph.proto.value_info = vi.filter((v) => v.name !== output);
  graph.removeNode(node);
  return {
    head: info?.name ?? '?', output: info?.output ?? '?', action: 'removed', spliceTensor: input,
    grlNode: node.name ?? '', grlOutput: output, rewired: consumers.map((n) => n.name ?? ''),
  };
}

function headOfGrl(model: Model, graph: Graph, node: NodeProto): HeadInfo | undefined {
  return analyzeHeads(model, graph).heads.find((h) => h.grl?.node === node.name);
}

/**
 * With GRLs present the model needs the function, the domain import and IR >= 8;
 * with none left, all three go back to how they were before patching.
 */
function syncGrlDeclarations(proto: ModelProto, graph: Graph): void {
  const anyGrl = graph.nodes.some(isGrlNode);
  const isGrlFn = (f: FunctionProto) => f.name === GRL_OP && f.domain === GRL_DOMAIN;
  const meta = proto.metadata_props ?? [];
  if (anyGrl) {
    if (!(proto.functions ?? []).some(isGrlFn)) (proto.functions ??= []).push(grlFunction(opsetVersion(proto) ?? 17));
    if (opsetVersion(proto, GRL_DOMAIN) === undefined) (proto.opset_import ??= []).push({ domain: GRL_DOMAIN, version: GRL_DOMAIN_VERSION });
    const ir = toNumber(proto.ir_version);
    if (ir < MIN_IR_FOR_FUNCTIONS) {
      meta.push({ key: IR_BEFORE_KEY, value: String(ir) });
      proto.ir_version = MIN_IR_FOR_FUNCTIONS;
    }
  } else {
    proto.functions = (proto.functions ?? []).filter((f) => !isGrlFn(f));
    proto.opset_import = (proto.opset_import ?? []).filter((o) => o.domain !== GRL_DOMAIN);
    const before = meta.find((m) => m.key === IR_BEFORE_KEY);
    if (before) {
      proto.ir_version = Number(before.value);
      proto.metadata_props = meta.filter((m) => m !== before);
    }
  }
}

/** `GradientReversal(X) -> Y`: identity forward; the training-graph builder supplies -λ·dY backward. */
export function grlFunction(opset: number): FunctionProto {
  return {
    name: GRL_OP,
    domain: GRL_DOMAIN,
    input: ['X'],
    output: ['Y'],
    attribute_proto: [
      { name: 'lambda', type: AttrType.FLOAT, f: 1 },
      { name: 'head', type: AttrType.STRING, s: Buffer.from('') },
    ],
    node: [{ name: 'GradientReversal/Identity', op_type: 'Identity', input: ['X'], output: ['Y'] }],
    opset_import: [{ domain: '', version: opset }],
    doc_string: 'Gradient reversal layer (grl-onnx): identity in the forward pass; in training the gradient is multiplied by -lambda.',
  };
}
