// Gradient builder, training graph: turning node lists into the ModelProtos
// onnxruntime loads. Each graph keeps only the nodes its outputs need, the
// initializers and value infos those nodes read, and is validated before it
// leaves; the model around it raises the opset and drops the GRL domain.
import type { Model } from '../onnx/io';
import { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, toNumber } from '../onnx/proto';
import { Graph, nodeReads } from '../onnx/graph';
import { GRL_DOMAIN } from '../patch/grl';
import { scheduleLeafTails } from './schedule';
import type { Dim } from './types';

const MIN_IR = 8;

export function valueInfo(name: string, elemType: number, dims: Dim[] | undefined): ValueInfoProto {
  const shape = dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})) } : undefined;
  return { name, type: { tensor_type: { elem_type: elemType, shape } } };
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

/** Every tensor name the nodes read or write. */
export function usedNames(nodes: NodeProto[]): Set<string> {
  const used = new Set<string>();
  for (const n of nodes) {
    for (const i of nodeReads(n)) if (i) used.add(i);
    for (const o of n.output ?? []) if (o) used.add(o);
  }
  return used;
}

/** One graph of the pair (training or eval): its nodes, the initializers they may read, and its outputs. */
export interface GraphParts {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  outputs: ValueInfoProto[];
}

/** The validated model for one graph of the pair; `inputs` are shared by both. */
export function assembleModel(model: Model, inputs: ValueInfoProto[], opset: number, parts: GraphParts): ModelProto {
  const live = scheduleLeafTails(liveNodes(parts.nodes, parts.outputs.map((o) => o.name ?? '')));
  const used = usedNames(live);
  const g: GraphProto = {
    name: parts.name,
    node: live,
    initializer: parts.initializers.filter((t) => used.has(t.name ?? '')),
    input: inputs,
    output: parts.outputs,
    value_info: (model.proto.graph?.value_info ?? []).filter((v) => used.has(v.name ?? '')),
  };
  new Graph(g).validate();
  return trainingModelProto(model.proto, g, opset);
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
