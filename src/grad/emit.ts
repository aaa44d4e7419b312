// Gradient builder: the Emitter collects the nodes and constants a rule adds,
// with deterministic names (`<node>/grad/<what>`), and offers the few
// opset-aware building blocks every rule needs (ReduceSum/Squeeze/Unsqueeze
// take axes as an input from opset 13; we require 13+).
import { NodeProto, TensorProto, DataType } from '../onnx/proto';
import { A, AttrValue, makeAttrs } from '../onnx/attrs';
import { makeTensor } from '../onnx/tensor';
import type { Dim } from './types';

/** A row-sparse gradient: dense[indices[k]] += rows[k] for every k; rows may repeat. */
export interface RowGradient {
  rows: string;
  indices: string;
}

export interface NameSource {
  uniqueName(base: string): string;
}

export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly consts = new Map<string, string>();

  constructor(
    private readonly names: NameSource,
    /** Prefix for every new name, e.g. `/encoder/layer.0/MatMul/grad`. Changeable per rule. */
    public prefix: string,
    /** Static shapes, when known (used by `unbroadcast` to skip the dynamic path). */
    private readonly knownShape: (name: string) => Dim[] | undefined = () => undefined,
  ) {}

  private readonly declared = new Map<string, Dim[]>();

  /**
   * Gradients that are a sum of rows scattered into zeros (Gather's, along axis 0): the
   * dense tensor -> its rows [N, ...] and their row indices [N]. A training graph may output
   * these instead of the dense tensor (TrainingGraphOptions.rowSparseGradients).
   */
  readonly rowGrads = new Map<string, RowGradient>();

  /** Static shape of a forward tensor, or of a new tensor a rule declared. */
  shapeOf(name: string): Dim[] | undefined {
    return this.declared.get(name) ?? this.knownShape(name);
  }

  /**
   * Records the static shape of a tensor a rule just made (e.g. `dY * B` is shaped like Y),
   * so `unbroadcast` can still take its static path. Returns `name` for chaining.
   */
  declareShape(name: string, dims: Dim[] | undefined): string {
    if (dims) this.declared.set(name, dims);
    return name;
  }

  name(what: string): string {
    return this.names.uniqueName(`${this.prefix}/${what}`);
  }

  /** Add a node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs?: Record<string, AttrValue | undefined>, what?: string): string {
    return this.opN(opType, inputs, 1, attrs, what)[0];
  }

  /** Add a node with `n` outputs; returns their names. */
  opN(opType: string, inputs: string[], n: number, attrs?: Record<string, AttrValue | undefined>, what?: string): string[] {
    const base = what ?? opType;
    const outputs = Array.from({ length: n }, (_, k) => this.name(n === 1 ? base : `${base}_out${k}`));
    this.nodes.push({ name: this.names.uniqueName(`${this.prefix}/${base}/${opType}`), op_type: opType, input: inputs, output: outputs, attribute: makeAttrs(attrs) });
    return outputs;
  }

  /** A constant 1-D int64 tensor (shared within one emitter when values repeat). */
  int64s(values: number[], what = 'const'): string {
    const key = `i64:${values.join(',')}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = this.name(what);
    this.initializers.push(makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values, (v) => BigInt(v))));
    this.consts.set(key, name);
    return name;
  }

  /** A constant float32 scalar (rank 0). */
  float(value: number, what = 'const'): string {
    const key = `f32:${value}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = this.name(what);
    this.initializers.push(makeTensor(name, DataType.FLOAT, [], Float32Array.of(value)));
    this.consts.set(key, name);
    return name;
  }

  shape(x: string): string {
    return this.op('Shape', [x], undefined, 'shape');
  }

  reshape(x: string, shape: string, what = 'reshape'): string {
    return this.op('Reshape', [x, shape], undefined, what);
  }

  /** ReduceSum over constant axes (or an axes tensor name). An empty axis list is the identity. */
  reduceSum(x: string, axes: number[] | string, keepdims: boolean, what = 'sum'): string {
    if (Array.isArray(axes) && axes.length === 0) return x;
    const axesName = Array.isArray(axes) ? this.int64s(axes, 'axes') : axes;
    return this.op('ReduceSum', [x, axesName], { keepdims: A.int(keepdims ? 1 : 0), noop_with_empty_axes: A.int(1) }, what);
  }

  unsqueeze(x: string, axes: number[], what = 'unsqueeze'): string {
    if (axes.length === 0) return x;
    return this.op('Unsqueeze', [x, this.int64s(axes, 'axes')], undefined, what);
  }

  squeeze(x: string, axes: number[], what = 'squeeze'): string {
    if (axes.length === 0) return x;
    return this.op('Squeeze', [x, this.int64s(axes, 'axes')], undefined, what);
  }
}
