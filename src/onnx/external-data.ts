// Model I/O: checking a loaded model's external data before anything reads it.
// Each external tensor's location must stay inside the model's folder
// (external-path.ts), its offset and length must be whole numbers, the bytes must
// lie inside the file, and the length must be what the tensor's dims and type
// need. A model that fails any of these is refused at load, on every load path.
import * as fs from 'fs';
import { ModelFormatError } from './errors';
import { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from './proto';
import { dataTypeName, dimsOf, elementSize, isExternal, numElements } from './tensor';
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

/** The tensors a node's attributes hold (value of a Constant, ...) and the graphs they nest. */
function attributeTensors(a: AttributeProto): TensorProto[] {
  const sparse = [...(a.sparse_tensor ? [a.sparse_tensor] : []), ...(a.sparse_tensors ?? [])];
  return [...(a.t ? [a.t] : []), ...(a.tensors ?? []), ...sparse.flatMap((s) => [s.values, s.indices].filter((t): t is TensorProto => !!t))];
}

/**
 * Refuse external data anywhere but on the main graph's initializers: in a node attribute
 * (a Constant's value), a subgraph's initializer or a sparse initializer. Saving copies
 * and re-homes only the main initializers' external data, so any other location would be
 * written into the output verbatim, relative to a different folder. The location rules
 * are checked first, so an escaping location gets that (more specific) line.
 */
export function refuseNestedExternalData(proto: ModelProto, baseDir: string, source: string): void {
  const refuse = (t: TensorProto, where: string, unnamed = where): void => {
    if (!isExternal(t)) return;
    // Attribute tensors are usually unnamed: name them by the attribute and node.
    const named = t.name ? t : { ...t, name: unnamed };
    checkExternalTensor(named, baseDir, source);
    throw new ModelFormatError(source, `tensor '${named.name}' (${where}) has external data; grl-onnx reads external data only for the main graph's initializers (save the model with that tensor inline)`);
  };
  const nodes = (ns: NodeProto[] | undefined, scope: string): void => {
    for (const n of ns ?? []) {
      for (const a of n.attribute ?? []) {
        const node = n.name || n.output?.[0] || '?';
        for (const t of attributeTensors(a)) refuse(t, `attribute '${a.name ?? '?'}' of node '${node}'${scope}`, `${node}.${a.name ?? '?'}`);
        for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) graph(g, false, ` in a subgraph of node '${node}'${scope}`);
      }
    }
  };
  const graph = (g: GraphProto, main: boolean, scope: string): void => {
    if (!main) for (const t of g.initializer ?? []) refuse(t, `an initializer${scope}`);
    for (const s of g.sparse_initializer ?? []) for (const t of [s.values, s.indices]) if (t) refuse(t, `a sparse initializer${scope}`);
    nodes(g.node, scope);
  };
  if (proto.graph) graph(proto.graph, true, '');
  for (const f of proto.functions ?? []) nodes(f.node, ` in function '${f.name ?? '?'}'`);
}
