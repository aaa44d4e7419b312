// Checker-grade model validation, in the spirit of onnx.checker, with no session:
// initializers (known data type, sane non-negative dims, byte length = elements ×
// element size), names (no tensor produced twice, no duplicate initializer; a graph
// input may share an initializer's name, as IR < 4 requires), every node input
// defined (in a subgraph, the enclosing scopes count), no cycles, nodes in topological
// order, default-domain ops
// that exist at the model's opset, and attribute types for the ops with gradient
// rules. `inspect` lists the findings; commands that write call assertValidModel.
import { Model } from './io';
import { GrlError } from './errors';
import { AttrType, DataType, GraphProto, NodeProto, TensorProto, ValueInfoProto, toNumber } from './proto';
import { DEFAULT_DOMAIN, nodeLabel, nodeReads, opsetVersion } from './graph';
import { dataTypeName, elementSize, isExternal } from './tensor';
import { ATTR_TYPES, NEWEST_KNOWN_OPSET, OP_SINCE } from './op-versions';

export interface Finding {
  /** The node or tensor the problem is about, e.g. `node 'x' (Add)` or `initializer 'w'`. */
  subject: string;
  message: string;
}

/** A dim above this is refused: no real tensor has 2^31 elements along one axis. */
export const MAX_DIM = 2 ** 31;
const SUB_BYTE = new Set<number>([DataType.UINT4, DataType.INT4, DataType.FLOAT4E2M1]);
const KNOWN_TYPES = new Set<number>(Object.values(DataType).filter((v): v is number => typeof v === 'number' && v !== DataType.UNDEFINED));

const isDefaultDomain = (d: string | undefined | null) => !d || d === 'ai.onnx';

interface Scope {
  /** Names visible from enclosing graphs (for subgraphs). */
  outer: ReadonlySet<string>;
  /** `in the body of node 'loop' (Loop): ` */
  prefix: string;
}

class Checker {
  readonly findings: Finding[] = [];
  private readonly opset: number | undefined;
  private readonly imported: Set<string>;
  private readonly functions: Set<string>;

  constructor(private readonly model: Model) {
    this.opset = opsetVersion(model.proto, DEFAULT_DOMAIN);
    this.imported = new Set((model.proto.opset_import ?? []).map((o) => (isDefaultDomain(o.domain) ? '' : o.domain ?? '')));
    this.functions = new Set((model.proto.functions ?? []).map((f) => `${f.domain ?? ''}:${f.name}`));
  }

  add(scope: Scope, subject: string, message: string): void {
    this.findings.push({ subject: `${scope.prefix}${subject}`, message });
  }

  graph(g: GraphProto, scope: Scope): void {
    const defined = new Map<string, string>(); // name -> what defines it
    const inits = new Set<string>();
    for (const t of g.initializer ?? []) {
      const name = t.name ?? '';
      if (inits.has(name)) this.add(scope, `initializer '${name}'`, 'is defined twice');
      inits.add(name);
      defined.set(name, `initializer '${name}'`);
      this.tensor(t, scope, `initializer '${name}'`);
    }
    const inputs = new Set<string>();
    for (const i of g.input ?? []) {
      const name = i.name ?? '';
      if (inputs.has(name)) this.add(scope, `graph input '${name}'`, 'is declared twice');
      inputs.add(name);
      if (!inits.has(name)) defined.set(name, `graph input '${name}'`);
      this.valueInfo(i, scope, 'graph input');
    }
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) {
        if (!o) continue;
        const prev = defined.get(o);
        if (prev) this.add(scope, `node ${this.label(n)}`, `output '${o}' is also produced by ${prev}`);
        else defined.set(o, `node ${this.label(n)}`);
      }
    }
    const visible = (name: string) => defined.has(name) || scope.outer.has(name);
    for (const n of g.node ?? []) {
      for (const i of n.input ?? []) {
        if (i && !visible(i)) this.add(scope, `node ${this.label(n)}`, `input '${i}' is not produced by any node, initializer or graph input`);
      }
      this.op(n, scope);
      this.subgraphs(n, scope, new Set([...scope.outer, ...defined.keys()]));
    }
    for (const o of g.output ?? []) {
      if (!visible(o.name ?? '')) this.add(scope, `graph output '${o.name}'`, 'is not produced by any node, initializer or graph input');
      this.valueInfo(o, scope, 'graph output');
    }
    this.cycles(g, scope);
  }

  private label(n: NodeProto): string {
    return `'${nodeLabel(n)}' (${n.op_type})`;
  }

  /** Data type, dims, and payload length of an initializer or a Constant's tensor. */
  tensor(t: TensorProto, scope: Scope, subject: string): void {
    const dt = t.data_type ?? 0;
    if (!KNOWN_TYPES.has(dt)) {
      this.add(scope, subject, `has unknown data type ${dt}`);
      return;
    }
    const dims = (t.dims ?? []).map((d) => toNumber(d));
    for (const [k, d] of dims.entries()) {
      if (!Number.isInteger(d) || d < 0) return this.add(scope, subject, `has dimension ${k} = ${d}; dims must be non-negative integers`);
      if (d > MAX_DIM) return this.add(scope, subject, `has dimension ${k} = ${d}, over 2^31`);
    }
    const n = dims.reduce((a, b) => a * b, 1);
    if (isExternal(t)) return; // checked against the file at load (external-data.ts)
    const size = elementSize(dt);
    const show = `dims [${dims.join(', ')}] of ${dataTypeName(dt)}`;
    if (t.raw_data && t.raw_data.length) {
      const need = SUB_BYTE.has(dt) ? Math.ceil(n / 2) : size ? n * size : undefined;
      if (need !== undefined && t.raw_data.length !== need) this.add(scope, subject, `has ${t.raw_data.length} bytes of raw data but its ${show} need ${need}`);
      return;
    }
    const typed = typedCount(t, dt);
    if (typed !== undefined && typed !== n) this.add(scope, subject, `has ${typed} values but its ${show} hold ${n}`);
  }

  private valueInfo(v: ValueInfoProto, scope: Scope, what: string): void {
    for (const [k, d] of (v.type?.tensor_type?.shape?.dim ?? []).entries()) {
      if (d.dim_value === undefined || d.dim_value === null || d.dim_param) continue;
      const x = toNumber(d.dim_value);
      if (x < 0 || x > MAX_DIM) this.add(scope, `${what} '${v.name}'`, `has dimension ${k} = ${x}; dims must be between 0 and 2^31`);
    }
  }

  /** The op exists at the model's opset (default domain) or its domain is imported; attribute types. */
  private op(n: NodeProto, scope: Scope): void {
    const op = n.op_type ?? '';
    if (isDefaultDomain(n.domain)) {
      const since = OP_SINCE[op];
      if (since === undefined) {
        if (this.opset === undefined || this.opset <= NEWEST_KNOWN_OPSET) {
          if (!this.functions.has(`:${op}`)) this.add(scope, `node ${this.label(n)}`, `'${op}' is not an operator of the default ONNX domain (ai.onnx)`);
        }
      } else if (this.opset !== undefined && since > this.opset) {
        this.add(scope, `node ${this.label(n)}`, `${op} exists since opset ${since}, but the model imports opset ${this.opset}`);
      }
      const want = ATTR_TYPES[op];
      for (const a of want ? n.attribute ?? [] : []) {
        const expected = want[a.name ?? ''];
        if (expected !== undefined && a.type && a.type !== expected) {
          this.add(scope, `node ${this.label(n)}`, `attribute '${a.name}' is ${AttrType[a.type] ?? a.type}, but ${op} expects ${AttrType[expected]}`);
        }
      }
      if (op === 'Constant') {
        const v = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
        if (v) this.tensor(v, scope, `the value of node ${this.label(n)}`);
      }
    } else if (!this.imported.has(n.domain ?? '') && !this.functions.has(`${n.domain}:${op}`)) {
      this.add(scope, `node ${this.label(n)}`, `its domain '${n.domain}' is not imported by the model (opset_import)`);
    }
  }

  private subgraphs(n: NodeProto, scope: Scope, outer: Set<string>): void {
    for (const a of n.attribute ?? []) {
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
        this.graph(g, { outer, prefix: `${scope.prefix}in the ${a.name} of node ${this.label(n)}: ` });
      }
    }
  }

  /** Kahn's algorithm over the nodes (subgraph reads count as inputs): a leftover node is on a cycle. */
  private cycles(g: GraphProto, scope: Scope): void {
    const nodes = g.node ?? [];
    const producer = new Map<string, number>();
    nodes.forEach((n, k) => (n.output ?? []).forEach((o) => o && !producer.has(o) && producer.set(o, k)));
    const waiting = new Array<number>(nodes.length).fill(0);
    const consumers: number[][] = nodes.map(() => []);
    nodes.forEach((n, k) => {
      for (const i of new Set(nodeReads(n))) {
        const p = i ? producer.get(i) : undefined;
        if (p === undefined) continue;
        waiting[k]++;
        consumers[p].push(k);
      }
    });
    const ready = waiting.flatMap((w, k) => (w === 0 ? [k] : []));
    let done = 0;
    while (ready.length) {
      const k = ready.pop() as number;
      done++;
      for (const c of consumers[k]) if (--waiting[c] === 0) ready.push(c);
    }
    if (done === nodes.length) {
      // Acyclic but out of order: onnxruntime sorts it, but the ONNX IR requires a sorted
      // node list, and our transformations (and onnx.checker) rely on it.
      for (const [k, n] of nodes.entries()) {
        const later = nodeReads(n).find((i) => i && (producer.get(i) ?? -1) > k);
        if (later) return this.add(scope, `node ${this.label(n)}`, `reads '${later}', which a later node produces; the nodes must be in topological order`);
      }
      return;
    }
    const stuck = nodes[waiting.findIndex((w) => w > 0)];
    this.add(scope, `node ${this.label(stuck)}`, `is on a cycle (it depends on its own output through ${nodes.length - done} node${nodes.length - done === 1 ? '' : 's'})`);
  }
}

/** How many values a tensor stores in its typed fields, or undefined when it has none. */
function typedCount(t: TensorProto, dt: number): number | undefined {
  const len = (xs: unknown[] | undefined) => (xs && xs.length ? xs.length : undefined);
  switch (dt) {
    case DataType.FLOAT: return len(t.float_data);
    case DataType.COMPLEX64: { const k = len(t.float_data); return k === undefined ? undefined : k / 2; }
    case DataType.DOUBLE: return len(t.double_data);
    case DataType.COMPLEX128: { const k = len(t.double_data); return k === undefined ? undefined : k / 2; }
    case DataType.INT64: return len(t.int64_data);
    case DataType.UINT32: case DataType.UINT64: return len(t.uint64_data);
    case DataType.STRING: return len(t.string_data);
    default: return len(t.int32_data);
  }
}

/** Every problem the checks find, in graph order. An empty list means the model passed. */
export function validateModel(model: Model): Finding[] {
  const c = new Checker(model);
  c.graph(model.proto.graph ?? {}, { outer: new Set(), prefix: '' });
  return c.findings;
}

/** A finding as one line: `node 'x' (Add): input 'y' is not produced ...`. */
export const findingText = (f: Finding): string => `${f.subject} ${f.message}`;

/**
 * Refuse an invalid model with one line naming the first problem (and how many more).
 * `where` names the model in the message (default: its source).
 */
export function assertValidModel(model: Model, where = model.source): void {
  const f = validateModel(model);
  if (!f.length) return;
  const more = f.length > 1 ? ` (and ${f.length - 1} more problem${f.length > 2 ? 's' : ''}: grl-onnx inspect lists them)` : '';
  throw new GrlError(`${where}: invalid model: ${findingText(f[0])}${more}`, { file: where });
}
