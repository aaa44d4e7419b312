// Model I/O, layer 3: handing a model to onnxruntime-node. One place that turns
// ORT's multi-line load errors into one GrlError line naming the model, and that
// inlines external data (ORT cannot resolve relative locations of a model given
// as bytes).
import * as ort from 'onnxruntime-node';
import { GrlError } from './errors';
import { Model, serializeModel } from './io';
import { ModelProto } from './proto';
import { isExternal, tensorBytes } from './tensor';

/** A copy of the model's proto whose external initializers are read into raw_data. */
function withInlinedData(model: Model): ModelProto {
  const g = model.proto.graph ?? {};
  if (!(g.initializer ?? []).some(isExternal)) return model.proto;
  const initializer = (g.initializer ?? []).map((t) => {
    if (!isExternal(t)) return t;
    const { external_data: _e, data_location: _l, ...rest } = t;
    return { ...rest, raw_data: tensorBytes(t, model.baseDir) };
  });
  return { ...model.proto, graph: { ...g, initializer } };
}

/** An InferenceSession for a model in memory, a model file or model bytes. */
export async function createOrtSession(src: Model | string | Uint8Array, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  const name = typeof src === 'string' ? src : src instanceof Uint8Array ? '<model bytes>' : src.source;
  try {
    if (typeof src === 'string') return await ort.InferenceSession.create(src, options);
    const bytes = src instanceof Uint8Array ? src : serializeModel(withInlinedData(src));
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw new GrlError(`${name}: onnxruntime cannot load it: ${String((e as Error).message).split('\n')[0]}`, { cause: e });
  }
}
