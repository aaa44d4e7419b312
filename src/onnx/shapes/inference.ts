// Shape inference, part 7: the inference state. Seeds from graph inputs
// (symbolic dims keep their names), initializers and value_info, then runs the
// per-op rules (elementwise.ts, values.ts, layout.ts, compute.ts) node by node.
// Where no rule decides a rank, a shape observed by running the model in
// onnxruntime (fallback.ts) can stand in; every rank remembers which it was.
import { DataType, GraphProto, NodeProto, TensorProto } from '../proto';
import { dimsOf, numElements, tensorToInts } from '../tensor';
import { Dim, merge, tensorDims } from './dims';
import { Env, IntValue, MAX_TRACKED, Result, ShapeRule } from './env';
import { ELEMENTWISE_RULES } from './elementwise';
import { VALUE_RULES } from './values';
import { LAYOUT_RULES } from './layout';
import { COMPUTE_RULES } from './compute';

export interface ShapeTable {
  shape(name: string): Dim[] | undefined;
  dtype(name: string): number | undefined;
}

/** Shapes observed in an onnxruntime run, for tensors whose rank static inference left unknown. */
export type ShapeHints = ReadonlyMap<string, Dim[]>;

/** How a tensor's rank became known: by the rules here, or from an onnxruntime run. */
export type RankSource = 'static' | 'onnxruntime';

const RULES: Record<string, ShapeRule> = { ...ELEMENTWISE_RULES, ...VALUE_RULES, ...LAYOUT_RULES, ...COMPUTE_RULES };

/** Default-domain ops that have a shape rule here (the rest are opaque). */
export const SHAPE_RULE_OPS: readonly string[] = Object.keys(RULES).sort();

/**
 * The inference state. Built from a graph, then extendable node by node, so the
 * gradient driver can ask for shapes of the tensors its rules have just emitted.
 */
export class ShapeInference implements ShapeTable {
  private readonly shapes = new Map<string, Dim[] | undefined>();
  private readonly types = new Map<string, number>();
  private readonly values = new Map<string, IntValue>();
  private readonly declared = new Map<string, Dim[] | undefined>();
  private readonly sources = new Map<string, RankSource>();
  private readonly env: Env;

  constructor(graph: GraphProto, private readonly hints?: ShapeHints) {
    for (const vi of graph.value_info ?? []) {
      this.declared.set(vi.name ?? '', tensorDims(vi));
      const et = vi.type?.tensor_type?.elem_type;
      if (et) this.types.set(vi.name ?? '', et);
    }
    for (const vi of [...(graph.input ?? []), ...(graph.output ?? [])]) {
      const et = vi.type?.tensor_type?.elem_type;
      if (et) this.types.set(vi.name ?? '', et);
    }
    for (const vi of graph.input ?? []) this.shapes.set(vi.name ?? '', tensorDims(vi));
    for (const t of graph.initializer ?? []) this.addInitializer(t);
    this.env = {
      shape: (n) => (n ? this.shape(n) : undefined),
      dtype: (n) => (n ? this.types.get(n) : undefined),
      value: (n) => (n ? this.values.get(n) : undefined),
      ints: (n) => {
        const v = n ? this.values.get(n) : undefined;
        return v && v.vals.every((d) => typeof d === 'number') ? (v.vals as number[]) : undefined;
      },
      setValue: (n, v) => { if (v.vals.length <= MAX_TRACKED) this.values.set(n, v); },
      tensorValue: (n, t) => this.trackValue(n, t),
    };
    for (const node of graph.node ?? []) this.addNode(node);
    for (const vi of graph.output ?? []) {
      const n = vi.name ?? '';
      const had = this.shapes.get(n);
      this.shapes.set(n, merge(had, tensorDims(vi)));
      if (!had && this.shapes.get(n)) this.sources.set(n, 'static');
    }
  }

  private trackValue(name: string, t: TensorProto): void {
    const dt = t.data_type ?? 0;
    const dims = dimsOf(t);
    if ((dt === DataType.INT64 || dt === DataType.INT32) && dims.length <= 1 && numElements(dims) <= MAX_TRACKED) {
      this.values.set(name, { scalar: dims.length === 0, vals: tensorToInts(t) });
    }
  }

  addInitializer(t: TensorProto): void {
    this.shapes.set(t.name ?? '', dimsOf(t));
    this.types.set(t.name ?? '', t.data_type ?? 0);
    this.trackValue(t.name ?? '', t);
  }

  /** Infer one node's outputs from what is known about its inputs (or an onnxruntime hint). */
  addNode(node: NodeProto): void {
    let outs: (Dim[] | undefined)[] = [];
    let outTypes: (number | undefined)[] = [];
    try {
      [outs, outTypes] = inferNode(node, this.env);
    } catch {
      // A malformed attribute or constant: leave this node's outputs unknown.
    }
    (node.output ?? []).forEach((o, k) => {
      if (!o) return;
      let s = merge(outs[k], this.declared.get(o));
      let source: RankSource | undefined = s ? 'static' : undefined;
      const hint = this.hints?.get(o);
      if (!s && hint) {
        s = [...hint];
        source = 'onnxruntime';
      } else if (s && hint && hint.length === s.length) {
        // The rank is static (perhaps thanks to an upstream hint); observed dims fill unknown ones.
        s = s.map((d, j) => d ?? hint[j]);
      }
      this.shapes.set(o, s);
      if (source) this.sources.set(o, source);
      const t = outTypes[k];
      if (t !== undefined && !this.types.has(o)) this.types.set(o, t);
    });
  }

  /** Record that `name` has the same shape and type as `like` (a gradient and its tensor). */
  alias(name: string, like: string): void {
    this.shapes.set(name, merge(this.shapes.get(name), this.shape(like)));
    const t = this.types.get(like);
    if (t !== undefined && !this.types.has(name)) this.types.set(name, t);
  }

  shape(name: string): Dim[] | undefined {
    return this.shapes.get(name) ?? this.declared.get(name);
  }

  dtype(name: string): number | undefined {
    return this.types.get(name);
  }

  /** How the rank of a node output became known; undefined while it is unknown. */
  rankSource(name: string): RankSource | undefined {
    return this.shape(name) ? this.sources.get(name) ?? 'static' : undefined;
  }
}

export function inferShapes(graph: GraphProto, hints?: ShapeHints): ShapeInference {
  return new ShapeInference(graph, hints);
}

function inferNode(node: NodeProto, env: Env): Result {
  const op = node.op_type ?? '';
  if (node.domain && node.domain !== 'ai.onnx') {
    // Custom ops we know are identity-shaped (the GRL, ORT's Gelu fusions); others are opaque.
    if (op === 'GradientReversal' || op === 'FastGelu' || op === 'BiasGelu') return [[env.shape(node.input?.[0])], [env.dtype(node.input?.[0])]];
    return [[], []];
  }
  const rule = RULES[op];
  return rule ? rule(node, env) : [[], []];
}
