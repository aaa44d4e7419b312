// Model I/O, saving: serialising a model as a list of chunks. Small headers are
// re-encoded; big tensor payloads are the original views of the loaded file, so a
// 400 MB model is never copied into a second buffer.
import * as protobuf from 'protobufjs';
import { GraphProto, ModelProto, TensorProto, messageType } from './proto';
import type { Model } from './load';

/** Encode a model to one buffer (small models, tests, handing bytes to ORT). */
export function serializeModel(model: Model | ModelProto): Buffer {
  const proto = 'proto' in model ? (model as Model).proto : (model as ModelProto);
  return Buffer.concat(encodeModelChunks(proto, proto.graph?.initializer ?? []));
}

const BIG_PAYLOAD = 4096;

function tagBytes(field: number, len: number): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((field << 3) | 2).uint32(len);
  return Buffer.from(w.finish());
}

/**
 * ModelProto as chunks. Big raw_data payloads are emitted as the original views; only
 * headers are re-encoded. Protobuf allows fields in any order, so graph.initializer and
 * model.graph go last.
 */
export function encodeModelChunks(model: ModelProto, initializers: TensorProto[]): Buffer[] {
  const T = messageType('TensorProto');
  const G = messageType('GraphProto');
  const M = messageType('ModelProto');
  const graph: GraphProto = model.graph ?? {};
  const small: TensorProto[] = [];
  const bigChunks: Buffer[] = [];
  let bigLen = 0;
  for (const t of initializers) {
    const raw = t.raw_data;
    if (!raw || raw.length < BIG_PAYLOAD) { small.push(t); continue; }
    const { raw_data: _r, ...rest } = t;
    const head = Buffer.from(T.encode(rest).finish());
    const rawTag = tagBytes(9, raw.length);
    const payload = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const tensorLen = head.length + rawTag.length + payload.length;
    const outer = tagBytes(5, tensorLen);
    bigChunks.push(outer, head, rawTag, payload);
    bigLen += outer.length + tensorLen;
  }
  const graphHead = Buffer.from(G.encode({ ...graph, initializer: small }).finish());
  const graphLen = graphHead.length + bigLen;
  const { graph: _g, ...modelRest } = model;
  const modelHead = Buffer.from(M.encode(modelRest).finish());
  return [modelHead, tagBytes(7, graphLen), graphHead, ...bigChunks];
}
