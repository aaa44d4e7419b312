// Heads, step 2: the ONNX nodes of one head, appended to a graph. Nodes are
// scoped like torch's exporter scopes modules (`/heads.pos/dense/MatMul`), so
// `patch --head pos` and `inspect` find them by name; parameters are
// initializers `heads.<name>.<what>` in the MatMul layout ([in, out]);
// scalar constants are Constant nodes, so they leave with the head's nodes.
import { Graph } from '../onnx/graph';
import { DataType } from '../onnx/proto';
import { A } from '../onnx/attrs';
import { float32Tensor, int64Tensor } from '../onnx/tensor';
import type { Rng } from '../data/jsonl';
import { linearInit } from './init';

/** The Gelu op exists from opset 20; below, the erf form torch exports: x · ½ · (1 + erf(x / √2)). */
export const GELU_OP_OPSET = 20;
/** LayerNormalization exists from opset 17; below, torch's decomposition. */
export const LAYER_NORM_OPSET = 17;
/** ReduceMean takes axes as an input from opset 18 (ReduceSum and Unsqueeze from 13). */
const REDUCE_MEAN_AXES_INPUT = 18;

export class HeadEmitter {
  constructor(readonly graph: Graph, readonly opset: number, readonly scope: string, readonly prefix: string) {}

  private tensor(what: string): string {
    return this.graph.uniqueName(`/${this.scope}/${what}_output_0`);
  }

  /** A node `/<scope>/<what>`; returns its (only) output, or `out` when given. */
  node(op: string, what: string, inputs: string[], attrs: Record<string, ReturnType<typeof A.int>> = {}, out?: string): string {
    const o = out ?? this.tensor(what);
    this.graph.add(op, inputs, [o], { name: this.graph.uniqueName(`/${this.scope}/${what}`), attrs });
    return o;
  }

  floatConst(what: string, v: number): string {
    return this.node('Constant', what, [], { value: A.tensor(float32Tensor('', [], [v])) });
  }

  intsConst(what: string, v: number[], scalar = false): string {
    return this.node('Constant', what, [], { value: A.tensor(int64Tensor('', scalar ? [] : [v.length], v)) });
  }

  param(what: string, dims: number[], values: ArrayLike<number>): string {
    const name = `${this.prefix}.${what}`;
    this.graph.addInitializer(float32Tensor(name, dims, values));
    return name;
  }

  /** x @ W + b with nn.Linear's init; W named `<prefix>.<sub>weight`. */
  linear(x: string, sub: string, fanIn: number, fanOut: number, rng: Rng, out?: string): string {
    const { weight, bias } = linearInit(rng, fanIn, fanOut);
    const w = this.param(`${sub}weight`, [fanIn, fanOut], weight);
    const b = this.param(`${sub}bias`, [fanOut], bias);
    const scope = sub ? `${sub.replace(/\.$/, '')}/` : '';
    return this.node('Add', `${scope}Add`, [this.node('MatMul', `${scope}MatMul`, [x, w]), b], {}, out);
  }

  gelu(x: string, scope: string): string {
    if (this.opset >= GELU_OP_OPSET) return this.node('Gelu', `${scope}Gelu`, [x]);
    const div = this.node('Div', `${scope}Div`, [x, this.floatConst(`${scope}Constant`, Math.SQRT2)]);
    const erf = this.node('Erf', `${scope}Erf`, [div]);
    const add = this.node('Add', `${scope}Add`, [erf, this.floatConst(`${scope}Constant_1`, 1)]);
    const mul = this.node('Mul', `${scope}Mul`, [x, add]);
    return this.node('Mul', `${scope}Mul_1`, [mul, this.floatConst(`${scope}Constant_2`, 0.5)]);
  }

  layerNorm(x: string, scope: string, gamma: string, beta: string, eps: number): string {
    if (this.opset >= LAYER_NORM_OPSET) {
      return this.node('LayerNormalization', `${scope}LayerNormalization`, [x, gamma, beta], { axis: A.int(-1), epsilon: A.float(eps) });
    }
    const mean = (what: string, t: string) => this.opset >= REDUCE_MEAN_AXES_INPUT
      ? this.node('ReduceMean', what, [t, this.intsConst(`${what}/axes`, [-1])])
      : this.node('ReduceMean', what, [t], { axes: A.ints([-1]) });
    const centered = this.node('Sub', `${scope}Sub`, [x, mean(`${scope}ReduceMean`, x)]);
    const variance = mean(`${scope}ReduceMean_1`, this.node('Mul', `${scope}Mul`, [centered, centered]));
    const std = this.node('Sqrt', `${scope}Sqrt`, [this.node('Add', `${scope}Add`, [variance, this.floatConst(`${scope}Constant`, eps)])]);
    const normed = this.node('Div', `${scope}Div`, [centered, std]);
    return this.node('Add', `${scope}Add_1`, [this.node('Mul', `${scope}Mul_1`, [normed, gamma]), beta]);
  }

  /** [B, T, d] -> [B, d]: the first token. */
  poolCls(h: string): string {
    return this.node('Gather', 'pool/Gather', [h, this.intsConst('pool/Constant', [0], true)], { axis: A.int(1) });
  }

  /** [B, T, d] -> [B, d]: the mean over positions where the mask is 1 (an all-padding row gives 0). */
  poolMean(h: string, mask: string): string {
    const m = this.node('Unsqueeze', 'pool/Unsqueeze', [this.node('Cast', 'pool/Cast', [mask], { to: A.int(DataType.FLOAT) }), this.intsConst('pool/Constant', [2])]);
    const axis = this.intsConst('pool/Constant_1', [1]);
    const sum = this.node('ReduceSum', 'pool/ReduceSum', [this.node('Mul', 'pool/Mul', [h, m]), axis], { keepdims: A.int(0) });
    const count = this.node('ReduceSum', 'pool/ReduceSum_1', [m, axis], { keepdims: A.int(0) });
    return this.node('Div', 'pool/Div', [sum, this.node('Max', 'pool/Max', [count, this.floatConst('pool/Constant_2', 1)])]);
  }
}
