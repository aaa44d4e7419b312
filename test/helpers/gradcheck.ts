// Test helpers: check one gradient rule against finite differences, JAX-style:
// <u, J^T v> from the rule versus (f(x + eps u) - f(x - eps u)) . v / (2 eps),
// in float32 with a step and tolerance chosen for float32. Each case runs with
// symbolic input shapes (the dynamic path of unbroadcast and friends) and with
// static shapes.
import * as ort from 'onnxruntime-node';
import { NodeProto, TensorProto } from '../../src/onnx/proto';
import { AttrValue, makeAttrs } from '../../src/onnx/attrs';
import { makeTensor } from '../../src/onnx/tensor';
import { Emitter } from '../../src/grad/emit';
import { makeRuleContext } from '../../src/grad/context';
import type { Dim } from '../../src/grad/types';
import { findRule } from '../../src/grad/rules';
import { F, I64, BOOL, makeModel, randn, rng, session, valueInfo } from './build';

export interface CaseInput {
  dims: number[];
  /** 'float' inputs are differentiated unless `diff: false`. */
  type?: 'float' | 'int64' | 'bool';
  values?: number[];
  diff?: boolean;
  /** Pass as an initializer (e.g. axes, shapes) rather than a graph input. */
  constant?: boolean;
  /** Scale of the random values (default 1); `positive` shifts them above 0.1 (Log, Sqrt, Pow base). */
  scale?: number;
  positive?: boolean;
}

export interface GradCase {
  op: string;
  domain?: string;
  inputs: CaseInput[];
  attrs?: Record<string, AttrValue>;
  numOutputs?: number;
  opset?: number;
  /** Which outputs receive a gradient (default: all). */
  gradOutputs?: number[];
  eps?: number;
  rtol?: number;
  seed?: number;
}

export interface GradCheckResult {
  analytic: number;
  numeric: number;
  /** The analytic gradients per differentiated input, for hand-checked expectations. */
  grads: Map<number, Float32Array>;
  /** The seed dL/dy_k fed for each output (random), for hand-checked expectations. */
  dys: Float32Array[];
}

/** Values at or beyond ±2^63 (e.g. INT64_MAX slice ends, which float32 rounds to 2^63) saturate instead of wrapping. */
function toInt64(v: number): bigint {
  if (v >= 2 ** 63) return 2n ** 63n - 1n;
  if (v <= -(2 ** 63)) return -(2n ** 63n);
  return BigInt(v);
}

function ortTensor(type: CaseInput['type'], data: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(data), toInt64), dims);
  if (type === 'bool') return new ort.Tensor('bool', Uint8Array.from(data), dims);
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

function elemType(t: CaseInput['type']): number {
  return t === 'int64' ? I64 : t === 'bool' ? BOOL : F;
}

function initializerFor(name: string, inp: CaseInput, data: ArrayLike<number>): TensorProto {
  if (inp.type === 'int64') return makeTensor(name, I64, inp.dims, BigInt64Array.from(Array.from(data), toInt64));
  if (inp.type === 'bool') return makeTensor(name, BOOL, inp.dims, Uint8Array.from(data));
  return makeTensor(name, F, inp.dims, Float32Array.from(data));
}

/** Run the rule on one node and compare with finite differences; throws with details on mismatch. */
export async function gradCheck(c: GradCase, mode: 'dynamic' | 'static' = 'dynamic'): Promise<GradCheckResult> {
  const opset = c.opset ?? 17;
  const rand = rng(c.seed ?? 1234);
  const nOut = c.numOutputs ?? 1;
  const names = c.inputs.map((_, i) => `x${i}`);
  const values = c.inputs.map((inp) => {
    if (inp.values) return Float32Array.from(inp.values);
    const n = inp.dims.reduce((a, b) => a * b, 1);
    const v = randn(rand, n, inp.scale ?? 1);
    if (inp.positive) for (let k = 0; k < n; k++) v[k] = 0.1 + Math.abs(v[k]);
    return v;
  });
  const isDiff = (i: number) => (c.inputs[i].type ?? 'float') === 'float' && c.inputs[i].diff !== false && !c.inputs[i].constant;
  const node: NodeProto = { name: `${c.op}_node`, op_type: c.op, domain: c.domain, input: names, output: Array.from({ length: nOut }, (_, k) => `y${k}`), attribute: makeAttrs(c.attrs) };
  const initializers = c.inputs.flatMap((inp, i) => (inp.constant ? [initializerFor(names[i], inp, values[i])] : []));
  const graphInputs = c.inputs.flatMap((inp, i) => (inp.constant ? [] : [valueInfo(names[i], elemType(inp.type), mode === 'static' ? inp.dims : inp.dims.map((_, k) => `${names[i]}_d${k}`))]));
  const feeds = (shift: number, u?: Float32Array[]): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {};
    c.inputs.forEach((inp, i) => {
      if (inp.constant) return;
      let v = values[i];
      if (u && isDiff(i)) v = v.map((x, k) => x + shift * u[i][k]);
      f[names[i]] = ortTensor(inp.type, v, inp.dims);
    });
    return f;
  };

  // Forward model: output shapes and the finite differences.
  const fwd = await session(makeModel({ nodes: [node], inputs: graphInputs, outputs: node.output!.map((o) => valueInfo(o, F)), initializers, opset }));
  const y0 = await fwd.run(feeds(0));
  const outDims = node.output!.map((o) => [...y0[o].dims]);
  const gradOuts = c.gradOutputs ?? Array.from({ length: nOut }, (_, k) => k);
  const v = outDims.map((d) => randn(rand, d.reduce((a, b) => a * b, 1)));
  const u = c.inputs.map((inp, i) => (isDiff(i) ? randn(rand, values[i].length) : new Float32Array(0)));

  // Gradient model: the rule's nodes on top of the forward node, seeded with v.
  // What the driver's shape inference would know. Static: everything. Dynamic: what real
  // exports give, the rank with symbolic input dims and unknown (null) output dims.
  // A gradient dy_k is shaped like its output y_k.
  const shapes = new Map<string, Dim[]>();
  c.inputs.forEach((inp, i) => shapes.set(names[i], mode === 'static' || inp.constant ? inp.dims : inp.dims.map((_, k) => `${names[i]}_d${k}`)));
  outDims.forEach((d, k) => {
    const known = mode === 'static' ? d : d.map(() => null);
    shapes.set(`y${k}`, known);
    shapes.set(`dy${k}`, known);
  });
  const used = new Set<string>([...names, ...node.output!]);
  const emit = new Emitter({ uniqueName: (b) => { let n = b; for (let k = 1; used.has(n); k++) n = `${b}_${k}`; used.add(n); return n; } }, `${node.name}/grad`, (n) => shapes.get(n));
  const entry = findRule(c.op, c.domain ?? '');
  if (!entry) throw new Error(`no rule for ${c.op}`);
  const ctx = makeRuleContext({
    node,
    opset,
    gradOutputs: node.output!.map((_, k) => (gradOuts.includes(k) ? `dy${k}` : null)),
    needsGrad: isDiff,
    emit,
    constants: { initializer: (n) => initializers.find((t) => t.name === n), producer: () => undefined },
    shape: (n) => emit.shapeOf(n),
  });
  const grads = entry.rule(ctx);
  const wanted = c.inputs.map((_, i) => i).filter(isDiff);
  for (const i of wanted) if (!grads[i]) throw new Error(`rule for ${c.op} returned no gradient for input ${i}`);
  for (const n of emit.nodes) if (n.domain) throw new Error(`rule for ${c.op} emitted non-default-domain op ${n.domain}::${n.op_type}`);
  const gradModel = makeModel({
    nodes: [node, ...emit.nodes],
    inputs: [...graphInputs, ...gradOuts.map((k) => valueInfo(`dy${k}`, F, mode === 'static' ? outDims[k] : outDims[k].map((_, j) => `dy${k}_d${j}`)))],
    outputs: wanted.map((i) => valueInfo(grads[i] as string, F)),
    initializers: [...initializers, ...emit.initializers],
    // Training graphs import at least opset 16 (ScatterND/ScatterElements reduction='add');
    // from 14 to 16 no op used here changed meaning, only gained types.
    opset: Math.max(opset, 16),
  });
  const bwd = await session(gradModel);
  const gfeeds = feeds(0);
  for (const k of gradOuts) gfeeds[`dy${k}`] = new ort.Tensor('float32', v[k], outDims[k]);
  const gres = await bwd.run(gfeeds);
  const gradMap = new Map<number, Float32Array>();
  let analytic = 0;
  for (const i of wanted) {
    const g = gres[grads[i] as string];
    if (g.dims.join() !== c.inputs[i].dims.join()) throw new Error(`${c.op}: gradient of input ${i} has shape [${g.dims}], input has [${c.inputs[i].dims}]`);
    const gd = g.data as Float32Array;
    gradMap.set(i, gd);
    for (let k = 0; k < gd.length; k++) analytic += gd[k] * u[i][k];
  }

  const eps = c.eps ?? 1e-2;
  const f = async (shift: number) => {
    const r = await fwd.run(feeds(shift, u));
    let s = 0;
    for (const k of gradOuts) {
      const d = r[`y${k}`].data as Float32Array;
      for (let j = 0; j < d.length; j++) s += d[j] * v[k][j];
    }
    return s;
  };
  const numeric = ((await f(eps)) - (await f(-eps))) / (2 * eps);
  const rtol = c.rtol ?? 2e-3;
  const scale = Math.max(Math.abs(analytic), Math.abs(numeric), 1e-3);
  if (!(Math.abs(analytic - numeric) <= rtol * scale + 1e-4)) {
    throw new Error(`${c.op} (${mode} shapes): analytic <u, J^T v> = ${analytic}, finite difference = ${numeric}`);
  }
  if (wanted.length && [...gradMap.values()].every((g) => g.every((x) => x === 0))) {
    throw new Error(`${c.op}: every gradient is exactly zero; the check would pass vacuously`);
  }
  await fwd.release();
  await bwd.release();
  return { analytic, numeric, grads: gradMap, dys: v };
}

/** Run a case with both symbolic and static shapes. */
export async function gradCheckBoth(c: GradCase): Promise<GradCheckResult> {
  await gradCheck(c, 'static');
  return gradCheck(c, 'dynamic');
}
