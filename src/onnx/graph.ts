// Graph IR: a thin index over a GraphProto for surgery. Producer and consumer
// maps, topological order, validation after each transformation, and
// deterministic readable names for new tensors and nodes. The protobuf objects
// are the storage: nothing is copied, initializer bytes stay views of the file.
import { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, toNumber } from './proto';
import { GraphError } from './errors';
import { AttrValue, makeAttrs } from './attrs';

export const DEFAULT_DOMAIN = '';

/** Highest imported version of a domain ('' and 'ai.onnx' are the default domain). */
export function opsetVersion(model: ModelProto, domain = DEFAULT_DOMAIN): number | undefined {
  let v: number | undefined;
  for (const o of model.opset_import ?? []) {
    const d = o.domain === 'ai.onnx' ? '' : o.domain ?? '';
    if (d === domain) v = Math.max(v ?? 0, toNumber(o.version));
  }
  return v;
}

/**
 * Every tensor a node reads: its inputs, then the outer-scope names its subgraphs (If branches,
 * Loop and Scan bodies, recursively) read without defining them. ONNX orders nodes by both.
 */
export function nodeReads(n: NodeProto): string[] {
  const explicit = n.input ?? [];
  const implicit = subgraphReads(n);
  return implicit.length ? [...explicit, ...implicit.filter((r) => !explicit.includes(r))] : explicit;
}

/** The outer-scope names a node's subgraphs read (none for a node without graph attributes). */
export function subgraphReads(n: NodeProto): string[] {
  if (!n.attribute?.some((a) => a.g || a.graphs?.length)) return [];
  const outer = new Set<string>();
  for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) addOuterReads(g, outer);
  return [...outer];
}

function addOuterReads(g: GraphProto, outer: Set<string>): void {
  const local = new Set<string>([
    ...(g.input ?? []).map((i) => i.name ?? ''),
    ...(g.initializer ?? []).map((t) => t.name ?? ''),
    ...(g.sparse_initializer ?? []).map((t) => t.values?.name ?? ''),
  ]);
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o) local.add(o);
  for (const n of g.node ?? []) for (const r of nodeReads(n)) if (r && !local.has(r)) outer.add(r);
}

/** A short label for a node in messages: its name, or op_type and first output. */
export function nodeLabel(n: NodeProto): string {
  return n.name ? n.name : `${n.op_type}(${n.output?.[0] ?? '?'})`;
}

export class Graph {
  private producers = new Map<string, NodeProto>();
  private consumers = new Map<string, NodeProto[]>();
  private inits = new Map<string, TensorProto>();
  private inputs = new Set<string>();
  private usedNames = new Set<string>();

  constructor(readonly proto: GraphProto) {
    this.reindex();
  }

  get nodes(): NodeProto[] {
    return (this.proto.node ??= []);
  }

  get initializers(): TensorProto[] {
    return (this.proto.initializer ??= []);
  }

  get graphInputs(): ValueInfoProto[] {
    return (this.proto.input ??= []);
  }

  get graphOutputs(): ValueInfoProto[] {
    return (this.proto.output ??= []);
  }

  /** Rebuild every index; call after editing the protobuf directly. */
  reindex(): this {
    this.producers.clear();
    this.consumers.clear();
    this.inits.clear();
    this.inputs.clear();
    this.usedNames.clear();
    for (const t of this.proto.initializer ?? []) {
      this.inits.set(t.name ?? '', t);
      this.usedNames.add(t.name ?? '');
    }
    for (const i of this.proto.input ?? []) {
      this.inputs.add(i.name ?? '');
      this.usedNames.add(i.name ?? '');
    }
    for (const n of this.proto.node ?? []) this.indexNode(n);
    return this;
  }

  private indexNode(n: NodeProto): void {
    if (n.name) this.usedNames.add(n.name);
    for (const o of n.output ?? []) {
      if (o) {
        this.producers.set(o, n);
        this.usedNames.add(o);
      }
    }
    for (const i of nodeReads(n)) {
      if (!i) continue;
      let list = this.consumers.get(i);
      if (!list) this.consumers.set(i, (list = []));
      if (!list.includes(n)) list.push(n);
    }
  }

  producer(tensor: string): NodeProto | undefined {
    return this.producers.get(tensor);
  }

  consumersOf(tensor: string): NodeProto[] {
    return this.consumers.get(tensor) ?? [];
  }

  initializer(name: string): TensorProto | undefined {
    return this.inits.get(name);
  }

  isGraphInput(name: string): boolean {
    return this.inputs.has(name);
  }

  isGraphOutput(name: string): boolean {
    return (this.proto.output ?? []).some((o) => o.name === name);
  }

  /** A name not used by any tensor or node yet: `base`, then `base_1`, `base_2`, ... Reserved at once. */
  uniqueName(base: string): string {
    let name = base;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  /** Append (or insert at `index`) a node and index it. */
  addNode(node: NodeProto, index?: number): NodeProto {
    if (index === undefined) this.nodes.push(node);
    else this.nodes.splice(index, 0, node);
    this.indexNode(node);
    return node;
  }

  /** Build and add a node: `graph.add('Mul', [a, b], [out], { name })`. */
  add(opType: string, inputs: string[], outputs: string[], opts: { name?: string; domain?: string; attrs?: Record<string, AttrValue | undefined>; index?: number } = {}): NodeProto {
    const node: NodeProto = { op_type: opType, input: inputs, output: outputs, name: opts.name ?? this.uniqueName(`${outputs[0]}/${opType}`), attribute: makeAttrs(opts.attrs) };
    if (opts.domain) node.domain = opts.domain;
    return this.addNode(node, opts.index);
  }

  removeNode(node: NodeProto): void {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new GraphError(`node ${nodeLabel(node)} is not in the graph`);
    this.nodes.splice(i, 1);
    this.reindex();
  }

  addInitializer(t: TensorProto): TensorProto {
    if (this.inits.has(t.name ?? '')) throw new GraphError(`initializer '${t.name}' already exists`);
    this.initializers.push(t);
    this.inits.set(t.name ?? '', t);
    this.usedNames.add(t.name ?? '');
    return t;
  }

  /** Make `node` read `to` wherever it read `from`. */
  rewireInput(node: NodeProto, from: string, to: string): void {
    node.input = (node.input ?? []).map((i) => (i === from ? to : i));
    const list = this.consumers.get(from);
    if (list && !nodeReads(node).includes(from)) this.consumers.set(from, list.filter((n) => n !== node));
    const dst = this.consumers.get(to) ?? [];
    if (!dst.includes(node)) dst.push(node);
    this.consumers.set(to, dst);
  }

  /** Every tensor name available before any node runs: graph inputs and initializers. */
  private sources(): Set<string> {
    const sparse = (this.proto.sparse_initializer ?? []).map((t) => t.values?.name ?? '').filter((n) => n);
    return new Set<string>([...this.inputs, ...this.inits.keys(), ...sparse]);
  }

  /** Reorder nodes topologically (stable: keeps the existing order where it is valid). Throws on a cycle. */
  toposort(): this {
    const nodes = this.nodes;
    const avail = this.sources();
    const order: NodeProto[] = [];
    const indeg = new Map<NodeProto, number>();
    const waiting = new Map<string, NodeProto[]>();
    for (const n of nodes) {
      const missing = new Set(nodeReads(n).filter((i) => i && !avail.has(i) && this.producers.has(i)));
      indeg.set(n, missing.size);
      for (const m of missing) {
        const w = waiting.get(m) ?? [];
        w.push(n);
        waiting.set(m, w);
      }
    }
    // Kahn's algorithm with a queue seeded in original order keeps the order stable.
    const ready: NodeProto[] = nodes.filter((n) => indeg.get(n) === 0);
    const pos = new Map(nodes.map((n, i) => [n, i]));
    while (ready.length) {
      ready.sort((a, b) => (pos.get(a) ?? 0) - (pos.get(b) ?? 0));
      const n = ready.shift() as NodeProto;
      order.push(n);
      for (const o of n.output ?? []) {
        if (!o) continue;
        for (const c of waiting.get(o) ?? []) {
          const d = (indeg.get(c) ?? 0) - 1;
          indeg.set(c, d);
          if (d === 0) ready.push(c);
        }
        waiting.delete(o);
      }
    }
    if (order.length !== nodes.length) {
      const stuck = nodes.find((n) => !order.includes(n));
      throw new GraphError(`graph has a cycle through node ${stuck ? nodeLabel(stuck) : '?'}`);
    }
    this.proto.node = order;
    return this;
  }

  /**
   * Check the graph is well formed: each tensor produced once, every node input defined
   * before use (graph input, initializer, earlier node output or an outer-scope name given
   * in `outer`), and every graph output defined.
   */
  validate(outer: Iterable<string> = []): this {
    const defined = new Set<string>([...this.sources(), ...outer]);
    const produced = new Set<string>();
    for (const n of this.nodes) {
      for (const i of nodeReads(n)) {
        if (i && !defined.has(i)) {
          const later = this.producers.has(i);
          throw new GraphError(`node ${nodeLabel(n)} (${n.op_type}) reads '${i}', which ${later ? 'is produced later (graph is not in topological order)' : 'nothing produces'}`);
        }
      }
      for (const o of n.output ?? []) {
        if (!o) continue;
        if (produced.has(o) || this.inits.has(o) || this.inputs.has(o)) throw new GraphError(`tensor '${o}' is produced twice (again by node ${nodeLabel(n)})`);
        produced.add(o);
        defined.add(o);
      }
    }
    for (const o of this.proto.output ?? []) {
      if (!defined.has(o.name ?? '')) throw new GraphError(`graph output '${o.name}' is never produced`);
    }
    return this;
  }

  /** Nodes that `tensor` depends on (transitively), as a set. */
  ancestors(tensor: string): Set<NodeProto> {
    const seen = new Set<NodeProto>();
    const stack = [tensor];
    while (stack.length) {
      const p = this.producers.get(stack.pop() as string);
      if (!p || seen.has(p)) continue;
      seen.add(p);
      for (const i of nodeReads(p)) if (i) stack.push(i);
    }
    return seen;
  }

  /** Remove nodes whose outputs reach no graph output (not initializers or inputs). */
  removeDeadNodes(): this {
    const live = new Set<NodeProto>();
    for (const o of this.proto.output ?? []) for (const n of this.ancestors(o.name ?? '')) live.add(n);
    this.proto.node = this.nodes.filter((n) => live.has(n));
    return this.reindex();
  }
}
