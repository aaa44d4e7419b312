// Shape inference, part 4: ops that make tensors from values: constants, Shape
// and Size, ConstantOfShape, Range, NonZero, OneHot. Small integer constants
// and shapes are tracked by value so that reshape targets stay static.
import { DataType } from '../proto';
import { attrInt, attrInts, attrTensor } from '../attrs';
import { dimsOf, tensorToInts } from '../tensor';
import { norm, unknownDims } from './dims';
import { INT_TYPES, MAX_TRACKED, ShapeRule, staticLength } from './env';

export const VALUE_RULES: Record<string, ShapeRule> = {
  Constant: (node, env) => {
    const out0 = node.output?.[0] ?? '';
    const t = attrTensor(node, 'value');
    if (t) { env.tensorValue(out0, t); return [[dimsOf(t)], [t.data_type]]; }
    const vi = attrInts(node, 'value_ints');
    if (vi) { env.setValue(out0, { scalar: false, vals: vi }); return [[[vi.length]], [DataType.INT64]]; }
    const i = attrInt(node, 'value_int');
    if (i !== undefined) { env.setValue(out0, { scalar: true, vals: [i] }); return [[[]], [DataType.INT64]]; }
    if (node.attribute?.some((a) => a.name === 'value_float')) return [[[]], [DataType.FLOAT]];
    if (node.attribute?.some((a) => a.name === 'value_floats')) return [[[null]], [DataType.FLOAT]];
    return [[], []];
  },
  Shape: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    if (!s0) return [[[null]], [DataType.INT64]];
    const r = s0.length;
    const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
    const start = clamp(attrInt(node, 'start', 0));
    const end = clamp(attrInt(node, 'end', r));
    const vals = s0.slice(start, Math.max(start, end));
    env.setValue(node.output?.[0] ?? '', { scalar: false, vals });
    return [[[vals.length]], [DataType.INT64]];
  },
  Size: () => [[[]], [DataType.INT64]],
  ConstantOfShape: (node, env) => {
    const t = attrTensor(node, 'value');
    const v = env.value(node.input?.[0]);
    const n = staticLength(env, node.input?.[0]);
    // A 1-D integer fill of known length is a value too (torch's expand: ConstantOfShape(Shape(target))).
    const len = v?.vals.length === 1 ? v.vals[0] : undefined;
    if (typeof len === 'number' && len <= MAX_TRACKED) {
      const fill = t ? tensorToInts(t)[0] : 0;
      if (!t || INT_TYPES.has(t.data_type ?? 0)) env.setValue(node.output?.[0] ?? '', { scalar: false, vals: Array(len).fill(fill) });
    }
    return [[v ? v.vals : n !== undefined ? unknownDims(n) : undefined], [t?.data_type ?? DataType.FLOAT]];
  },
  Range: (node, env) => {
    // Shape-derived bounds: Range(0, n, 1) has n elements, symbolic or not. Always 1-D.
    const inp = node.input ?? [];
    const t0 = env.dtype(inp[0]);
    const [start, limit, delta] = [0, 1, 2].map((k) => { const v = env.value(inp[k]); return v?.scalar ? v.vals[0] : null; });
    if (start === 0 && delta === 1 && limit !== null) return [[[typeof limit === 'number' ? Math.max(0, limit) : limit]], [t0]];
    if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0) return [[[Math.max(0, Math.ceil((limit - start) / delta))]], [t0]];
    return [[[null]], [t0]];
  },
  NonZero: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    return [[s0 ? [s0.length, null] : undefined], [DataType.INT64]];
  },
  OneHot: (node, env) => {
    const s0 = env.shape(node.input?.[0]);
    if (!s0) return [[undefined], [env.dtype(node.input?.[2])]];
    const r = s0.length + 1;
    const axis = norm(attrInt(node, 'axis', -1), r);
    const res = [...s0];
    res.splice(axis, 0, null);
    return [[res], [env.dtype(node.input?.[2])]];
  },
  EyeLike: (node, env) => [[env.shape(node.input?.[0])], [attrInt(node, 'dtype', 0) || env.dtype(node.input?.[0])]],
};
