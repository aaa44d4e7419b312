// Model I/O, layer 3: handing a model to onnxruntime-node. The one place sessions
// are created: it keeps onnxruntime's own logger quiet (its errors still arrive as
// exceptions, which the CLI turns into one line; `--debug` lets the log through),
// turns ORT's multi-line load errors into one GrlError line naming the model, and
// inlines external data (ORT cannot resolve relative locations of a model given
// as bytes).
import * as ort from 'onnxruntime-node';
import { GrlError } from './errors';
import { Model, loadModel, serializeModel } from './io';
import { ModelProto } from './proto';
import { isExternal, tensorBytes } from './tensor';

/** onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. */
const QUIET = 4;
const VERBOSE = 2;
let severity = QUIET;

/** Let onnxruntime's own log (warnings and errors) through to stderr (`--debug`), or keep it quiet (the default). */
export function setOrtLogging(verbose: boolean): void {
  severity = verbose ? VERBOSE : QUIET;
  ort.env.logLevel = verbose ? 'warning' : 'fatal';
}

/** Session options with the project's log severity (an explicit `logSeverityLevel` wins). */
export function sessionOptions(options: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return { logSeverityLevel: severity as 0 | 1 | 2 | 3 | 4, ...options };
}

/**
 * Every InferenceSession the project creates goes through here. `name` is what errors
 * call the model.
 */
export async function createInferenceSession(src: string | Uint8Array, options: ort.InferenceSession.SessionOptions = {}, name?: string): Promise<ort.InferenceSession> {
  if (severity === QUIET) ort.env.logLevel = 'fatal';
  // onnxruntime resolves a file's external data itself: check the locations stay inside its folder first.
  if (typeof src === 'string') loadModel(src);
  try {
    return typeof src === 'string' ? await ort.InferenceSession.create(src, sessionOptions(options)) : await ort.InferenceSession.create(src, sessionOptions(options));
  } catch (e) {
    throw new GrlError(`${name ?? (typeof src === 'string' ? src : '<model bytes>')}: onnxruntime cannot load it: ${String((e as Error).message).split('\n')[0]}`, { cause: e });
  }
}

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
  if (typeof src === 'string' || src instanceof Uint8Array) return createInferenceSession(src, options);
  return createInferenceSession(serializeModel(withInlinedData(src)), options, src.source);
}
