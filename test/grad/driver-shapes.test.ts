// Static shape inference (src/onnx/shapes/), which the driver hands to the
// rules: on every fixture and zoo model, every dim it claims is checked against the
// shapes onnxruntime-node actually produces at two batch shapes. Numbers must
// match, and a symbolic dim must mean the same value wherever it appears.
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import { ModelProto } from '../../src/onnx/proto';
import { inferShapes, broadcastShapes } from '../../src/onnx/shapes';
import { FIXTURE_NAMES, FixtureName, ZOO_NAMES, loadReference, modelPath } from '../fixtures/reference';

/** The model with every node output exposed as a graph output (types left open). */
function exposeAll(proto: ModelProto): { model: ModelProto; names: string[] } {
  const g = proto.graph!;
  const names = g.node!.flatMap((n) => n.output ?? []).filter((o) => o);
  const model: ModelProto = { ...proto, graph: { ...g, output: names.map((name) => ({ name })) } };
  return { model, names };
}

function feedsAt(name: FixtureName, rows: number, t: number): Record<string, ort.Tensor> {
  const ref = loadReference(name);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(ref.inputs)) {
    const T = v.dims[1];
    const data: number[] = [];
    for (let r = 0; r < rows; r++) data.push(...v.data.slice(r * T, r * T + t));
    feeds[k] = new ort.Tensor('int64', BigInt64Array.from(data, BigInt), [rows, t]);
  }
  return feeds;
}

describe.each([...FIXTURE_NAMES, ...ZOO_NAMES].map((n) => [n]))('shape inference on %s', (name: FixtureName) => {
  it('never claims a wrong dim, and infers the shapes of most tensors statically', async () => {
    const model = loadModel(modelPath(name));
    const shapes = inferShapes(model.proto.graph!);
    const { model: all, names } = exposeAll(model.proto);
    const s = await ort.InferenceSession.create(serializeModel(all), { graphOptimizationLevel: 'disabled' });
    let known = 0;
    let full = 0;
    for (const [rows, t] of [[3, 7], [2, 5]]) {
      const out = await s.run(feedsAt(name, rows, t));
      const symbols = new Map<string, number>([['batch', rows], ['sequence', t]]);
      for (const n of names) {
        const claimed = shapes.shape(n);
        if (!claimed) continue;
        const actual = out[n].dims;
        expect([n, claimed.length]).toEqual([n, actual.length]);
        claimed.forEach((d, k) => {
          if (typeof d === 'number') expect([n, k, d]).toEqual([n, k, actual[k]]);
          else if (typeof d === 'string') {
            const seen = symbols.get(d);
            if (seen === undefined) symbols.set(d, actual[k]);
            else expect([n, k, d, seen]).toEqual([n, k, d, actual[k]]);
          }
        });
        if (rows === 3) {
          known++;
          if (claimed.every((d) => d !== null)) full++;
        }
      }
    }
    await s.release();
    // Transformer exports compute reshape targets in-graph (Shape -> Gather -> Concat -> Reshape,
    // Range over the sequence length, a position buffer sliced to it, torch's expand as
    // Where(Equal(target, -1), 1, target), CumSum positions); all of it comes out static.
    expect(known).toBe(names.length);
    expect(full).toBe(names.length);
  });
});

describe('broadcastShapes', () => {
  it('answers only what is certain', () => {
    expect(broadcastShapes([['b', 's', 8], [8]])).toEqual(['b', 's', 8]);
    expect(broadcastShapes([['b', 1, 1, 's'], ['b', 4, 's', 's']])).toEqual(['b', 4, 's', 's']);
    // A symbol against a number other than 1: the symbol must be 1 or equal, so the number wins.
    expect(broadcastShapes([['b'], [5]])).toEqual([5]);
    // Two different symbols, or an unknown against a symbol: either could be 1.
    expect(broadcastShapes([['a'], ['b']])).toEqual([null]);
    expect(broadcastShapes([[null], ['b']])).toEqual([null]);
    expect(broadcastShapes([[null], [1]])).toEqual([null]);
    expect(broadcastShapes([['a'], undefined])).toBeUndefined();
  });
});
