// Training: exportModelForInferencing's work. The original inference graph (GRL nodes kept:
// identity at inference) with the trained weights under the same initializer names.
import { GrlError } from '../onnx/errors';
import { Model, saveModel } from '../onnx/io';
import { DataType, TensorProto } from '../onnx/proto';
import { dimsOf, isExternal, makeTensor, numElements, tensorByteLength } from '../onnx/tensor';
import type { ParamSlot } from './slots';

/** Write `model` with each slot's values from `params` as its initializer; never over a `protect`ed path. */
export function exportWithWeights(model: Model, slots: readonly ParamSlot[], params: Float32Array, dest: string, protect: string[]): void {
  const graph = model.proto.graph ?? {};
  const slotByName = new Map(slots.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const initializer = (graph.initializer ?? []).map((t): TensorProto => {
    const slot = slotByName.get(t.name ?? '');
    if (!slot) return t;
    seen.add(slot.name);
    if (t.data_type !== DataType.FLOAT || numElements(dimsOf(t)) !== slot.size) throw new GrlError(`${model.source}: initializer '${t.name}' does not match trainable parameter (${slot.size} floats)`);
    const fresh = makeTensor(slot.name, DataType.FLOAT, dimsOf(t), params.subarray(slot.offset, slot.offset + slot.size));
    return t.doc_string ? { ...fresh, doc_string: t.doc_string } : fresh;
  });
  const missing = slots.filter((s) => !seen.has(s.name));
  if (missing.length) throw new GrlError(`${model.source}: has no initializer for trained parameter(s) ${missing.slice(0, 3).map((s) => `'${s.name}'`).join(', ')}`);
  // Tensors that are external in the inference model stay external, in the export's own
  // `<dest>.data`: saveModel copies the frozen ones and writes the trained values there, so
  // the export never points at the input's data file (whose bytes are the untrained weights).
  const externalBytes = (graph.initializer ?? []).filter(isExternal).map(tensorByteLength);
  const externalData = externalBytes.length ? { threshold: externalBytes.reduce((a, b) => Math.min(a, b)) } : undefined;
  saveModel({ ...model, proto: { ...model.proto, graph: { ...graph, initializer } } }, dest, { externalData, protect });
}
