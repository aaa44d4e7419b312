// Probing, step 1: run the (frozen) model once over a data split and take the
// encodings at one tensor (by default the splice point of a head), one row per
// labelled token (or per sequence for a sequence head).
import * as ort from 'onnxruntime-node';
import { Model } from '../onnx/io';
import { createOrtSession } from '../onnx/ort';
import { Graph, nodeReads } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { DataType, ModelProto } from '../onnx/proto';
import { DataSpec, Example, IGNORE_INDEX, makeBatch } from '../data/jsonl';

export interface Features {
  /** Row-major [rows, dim]. */
  x: Float32Array;
  rows: number;
  dim: number;
  /** Gold label per row. */
  y: Int32Array;
  /** The input id (word type) of each row, for control tasks; -1 for sequence rows. */
  wordIds: Int32Array;
  /** The index of the example each row comes from (rows of one example are consecutive): entity spans never cross it. */
  example?: Int32Array;
}

/** A copy of the model whose only output is `tensor` (graph pruned to what it needs). */
export function modelWithOutput(model: Model, tensor: string): ModelProto {
  const g = model.proto.graph ?? {};
  const graph = new Graph({ ...g, node: [...(g.node ?? [])], output: [{ name: tensor, type: { tensor_type: { elem_type: DataType.FLOAT } } }], value_info: [] });
  const producer = graph.producer(tensor);
  if (!producer && !graph.isGraphInput(tensor)) throw new GrlError(`${model.source}: tensor '${tensor}' is not produced by any node`);
  graph.removeDeadNodes();
  // Drop the initializers only pruned nodes read (ORT warns about each one otherwise).
  const used = new Set(graph.nodes.flatMap((n) => nodeReads(n)));
  const pruned = { ...graph.proto, initializer: (graph.proto.initializer ?? []).filter((t) => used.has(t.name ?? '')) };
  return { ...model.proto, graph: pruned };
}

export async function extractFeatures(
  model: Model,
  examples: Example[],
  spec: DataSpec,
  opts: { tensor: string; label: string; tokenLevel: boolean; batchSize?: number; session?: ort.InferenceSession.SessionOptions },
): Promise<Features> {
  const session = await createOrtSession({ ...model, proto: modelWithOutput(model, opts.tensor) }, opts.session ?? {});
  const rowsX: Float32Array[] = [];
  const ys: number[] = [];
  const ids: number[] = [];
  const exampleOf: number[] = [];
  let dim = -1;
  const bs = opts.batchSize ?? 64;
  const dataSpec: DataSpec = { ...spec, labels: spec.labels.filter((l) => l.key === opts.label) };
  try {
    for (let s = 0; s < examples.length; s += bs) {
      const batch = makeBatch(examples.slice(s, s + bs), dataSpec);
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) {
        const data = batch.inputs[name];
        if (!data) throw new GrlError(`model input '${name}' is not in the data`);
        feeds[name] = new ort.Tensor('int64', data, [batch.size, batch.seqLen]);
      }
      const out = (await session.run(feeds))[opts.tensor];
      const data = out.data as Float32Array;
      const d = out.dims[out.dims.length - 1];
      dim = d;
      const labels = batch.labels[opts.label] as BigInt64Array;
      const inputIds = batch.inputs.input_ids ?? batch.inputs[session.inputNames[0]];
      if (opts.tokenLevel) {
        if (out.dims.length !== 3) throw new GrlError(`tensor '${opts.tensor}' has rank ${out.dims.length}; a token-level probe needs [batch, seq, dim]`);
        for (let b = 0; b < batch.size; b++) {
          for (let t = 0; t < batch.seqLen; t++) {
            const y = Number(labels[b * batch.seqLen + t]);
            if (y === IGNORE_INDEX) continue;
            const off = (b * batch.seqLen + t) * d;
            rowsX.push(data.slice(off, off + d));
            ys.push(y);
            ids.push(Number(inputIds[b * batch.seqLen + t]));
            exampleOf.push(s + b);
          }
        }
      } else {
        // Sequence heads: the first token's encoding (what a BERT pooler reads), or the row itself for [B, d].
        const per = out.dims.length === 3 ? batch.seqLen * d : d;
        for (let b = 0; b < batch.size; b++) {
          const y = Number(labels[b]);
          if (y === IGNORE_INDEX) continue;
          rowsX.push(data.slice(b * per, b * per + d));
          ys.push(y);
          ids.push(-1);
          exampleOf.push(s + b);
        }
      }
    }
  } finally {
    await session.release();
  }
  const x = new Float32Array(rowsX.length * Math.max(dim, 0));
  rowsX.forEach((r, i) => x.set(r, i * dim));
  return { x, rows: rowsX.length, dim, y: Int32Array.from(ys), wordIds: Int32Array.from(ids), example: Int32Array.from(exampleOf) };
}
