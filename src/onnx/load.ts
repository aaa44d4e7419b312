// Model I/O, layer 2: loading whole models.
//
// Loading decodes with protobufjs reflection; tensor bytes stay zero-copy views of
// the file buffer and external data is only read when asked for. Before decoding,
// a wire-format scan (wire-scan.ts) checks the bytes are well-formed protobuf and
// records any field the schema does not know, so that a save can refuse instead of
// dropping it. External tensors are checked against their files here, at load
// (external-data.ts), so no later step reads outside the model's folder.
import * as fs from 'fs';
import * as path from 'path';
import { ModelProto, messageType, toNumber } from './proto';
import { ModelFormatError } from './errors';
import { isExternal, setExternalBaseDir } from './tensor';
import { checkExternalTensor, refuseNestedExternalData } from './external-data';
import { scanWire } from './wire-scan';

export interface Model {
  proto: ModelProto;
  /** Where it came from: a path, '<stdin>' or '<buffer>'. Used in error messages. */
  source: string;
  /** Folder that external-data locations are relative to (the model file's folder). */
  baseDir?: string;
  /** Paths of wire fields that proto/onnx.proto does not define (e.g. `graph.node[3].#99`). */
  unknownFields: string[];
}

export interface LoadOptions {
  /** Folder for external data when loading from a buffer or stdin. */
  baseDir?: string;
  /** Name used in error messages when loading from a buffer. */
  name?: string;
}

/** Load a model from a path, `-` (stdin) or a buffer. */
export function loadModel(src: string | Uint8Array, opts: LoadOptions = {}): Model {
  let buf: Buffer;
  let source: string;
  let baseDir = opts.baseDir;
  if (typeof src === 'string') {
    if (src === '-') {
      source = '<stdin>';
      buf = readStdin();
      baseDir ??= process.cwd();
    } else {
      source = src;
      try {
        buf = fs.readFileSync(src);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ModelFormatError(src, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a model file' : `cannot read (${code})`);
      }
      baseDir ??= path.dirname(path.resolve(src));
    }
  } else {
    source = opts.name ?? '<buffer>';
    buf = Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  }
  return decodeModel(buf, source, baseDir);
}

function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF') break;
      throw new ModelFormatError('<stdin>', `cannot read (${code})`);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function decodeModel(buf: Buffer, source: string, baseDir?: string): Model {
  if (buf.length === 0) throw new ModelFormatError(source, 'empty file, not an ONNX model');
  const first = buf.subarray(0, 64).toString('latin1').trimStart()[0];
  if (first === '{' || first === '[') throw new ModelFormatError(source, 'looks like JSON, not an ONNX model (a binary protobuf file)');
  const unknownFields: string[] = [];
  try {
    scanWire(messageType('ModelProto'), buf, 0, buf.length, 'model', unknownFields, 0);
  } catch (e) {
    throw new ModelFormatError(source, `not a valid ONNX model: ${(e as Error).message}`, e);
  }
  let proto: ModelProto;
  try {
    proto = messageType('ModelProto').decode(buf) as unknown as ModelProto;
  } catch (e) {
    throw new ModelFormatError(source, `not a valid ONNX model: ${(e as Error).message}`, e);
  }
  if (!proto.graph) throw new ModelFormatError(source, 'not an ONNX model: it has no graph');
  if (toNumber(proto.ir_version) <= 0) throw new ModelFormatError(source, 'not an ONNX model: it has no ir_version');
  if (!proto.opset_import?.length) throw new ModelFormatError(source, 'not an ONNX model: it imports no opset');
  if (unknownFields.some((f) => !f.startsWith('model.graph') && !f.startsWith('model.functions')) && unknownFields.length > 8) {
    throw new ModelFormatError(source, `not an ONNX model: ${unknownFields.length} fields unknown to the ONNX schema (first: ${unknownFields[0]})`);
  }
  const model: Model = { proto, source, baseDir, unknownFields };
  for (const t of proto.graph.initializer ?? []) {
    if (!isExternal(t)) continue;
    checkExternalTensor(t, baseDir ?? '.', source);
    if (baseDir !== undefined) setExternalBaseDir(t, baseDir);
  }
  refuseNestedExternalData(proto, baseDir ?? '.', source);
  return model;
}
