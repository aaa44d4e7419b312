// Model I/O: checking a loaded model's external data before anything reads it.
// Each external tensor's location must stay inside the model's folder
// (external-path.ts), its offset and length must be whole numbers, the bytes must
// lie inside the file, and the length must be what the tensor's dims and type
// need. A model that fails any of these is refused at load, on every load path.
import * as fs from 'fs';
import { ModelFormatError } from './errors';
import { TensorProto } from './proto';
import { dataTypeName, dimsOf, elementSize, numElements } from './tensor';
import { externalDataPath } from './external-path';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function wholeNumber(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return /^\s*\d+\s*$/.test(v) && Number(v) <= MAX_SAFE ? Number(v) : NaN;
}

/** Check one external tensor of the model `source` whose locations are relative to `baseDir`. */
export function checkExternalTensor(t: TensorProto, baseDir: string, source: string): void {
  const name = t.name ?? '?';
  const kv = new Map((t.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new ModelFormatError(source, `tensor '${name}' is external but has no 'location'`);
  const file = externalDataPath(baseDir, location, name, source);
  const offset = wholeNumber(kv.get('offset')) ?? 0;
  const length = wholeNumber(kv.get('length'));
  if (Number.isNaN(offset)) throw new ModelFormatError(source, `tensor '${name}' has external offset '${kv.get('offset')}', not a non-negative integer`);
  if (Number.isNaN(length)) throw new ModelFormatError(source, `tensor '${name}' has external length '${kv.get('length')}', not a non-negative integer`);
  const dims = dimsOf(t);
  const size = elementSize(t.data_type ?? 0);
  const need = dims.every((d) => Number.isSafeInteger(d) && d >= 0) ? numElements(dims) * size : NaN;
  if (size && length !== undefined && length !== need) {
    throw new ModelFormatError(source, `tensor '${name}' has ${length} bytes of external data but its dims [${dims.join(', ')}] of ${dataTypeName(t.data_type ?? 0)} need ${need}`);
  }
  let fileSize: number;
  try {
    fileSize = fs.statSync(file).size;
  } catch {
    throw new ModelFormatError(source, `external data file '${location}' of tensor '${name}' not found (looked in ${baseDir})`);
  }
  const len = length ?? need;
  if (Number.isFinite(len) && offset + len > fileSize) {
    throw new ModelFormatError(source, `external data of tensor '${name}' runs past the end of '${location}' (${offset}+${len} > ${fileSize} bytes)`);
  }
}
