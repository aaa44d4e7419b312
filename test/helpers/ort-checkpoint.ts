// Test helpers: a checkpoint laid out the way ONNX Runtime 1.19's save::FromCheckpointState
// writes one (orttraining/training_api/checkpoint.cc), for checkpoints onnxruntime-web cannot
// save (its wasm API has no save). Independent of src/train/checkpoint.ts's writer:
//  - parameters, groups, per-parameter states and momentums sorted by name (SortedKeys);
//  - flatbuffers' default-skipping builder: no is_nominal_state / has_external_data fields,
//    no step when it is 0;
//  - raw_data neither padded nor aligned (SaveOrtTensorOrtFormat writes a plain byte vector);
//  - checkpoint version 2 (ORT 1.19's kCheckpointVersion; it refuses 1), and only the properties given.
import { Builder } from 'flatbuffers';
import type { CheckpointState, NamedTensor } from '../../src/train/checkpoint';

const FLOAT = 1;
const byName = <T>(key: (t: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

function tensor(b: Builder, t: NamedTensor): number {
  const name = b.createString(t.name);
  b.startVector(8, t.dims.length, 8);
  for (let i = t.dims.length - 1; i >= 0; i--) b.addInt64(BigInt(t.dims[i]));
  const dims = b.endVector();
  const raw = b.createByteVector(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  b.startObject(6);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(2, dims, 0);
  b.addFieldInt32(3, FLOAT, 0);
  b.addFieldOffset(4, raw, 0);
  return b.endObject();
}

function vector(b: Builder, offsets: number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

/** Encode `s` the way ORT's save::FromCheckpointState would. */
export function ortStyleCheckpoint(s: CheckpointState): Uint8Array {
  const b = new Builder(1024);
  const sorted = (ts: NamedTensor[]) => [...ts].sort(byName((t: NamedTensor) => t.name));
  const trainable = vector(b, sorted(s.trainable).map((t) => tensor(b, t)));
  const frozen = vector(b, sorted(s.frozen).map((t) => tensor(b, t)));
  b.startObject(4);
  b.addFieldOffset(0, trainable, 0);
  b.addFieldOffset(1, frozen, 0);
  const module = b.endObject();
  const groups = [...s.optimizerGroups].sort(byName((g: CheckpointState['optimizerGroups'][number]) => g.name)).map((g) => {
    const states = [...g.states].sort(byName((p: typeof g.states[number]) => p.paramName)).map((p) => {
      const moms = vector(b, sorted(p.momentums).map((m) => tensor(b, m)));
      const pname = b.createString(p.paramName);
      b.startObject(2);
      b.addFieldOffset(0, pname, 0);
      b.addFieldOffset(1, moms, 0);
      return b.endObject();
    });
    const statesVec = vector(b, states);
    const name = b.createString(g.name);
    b.startObject(4);
    b.addFieldOffset(0, name, 0);
    b.addFieldInt64(1, BigInt(g.step), BigInt(0));
    b.addFieldFloat32(2, g.initialLearningRate, 0);
    b.addFieldOffset(3, statesVec, 0);
    return b.endObject();
  });
  const groupsVec = vector(b, groups);
  const entries = <V>(rec: Record<string, V>) => Object.entries(rec).sort(byName(([k]: [string, V]) => k));
  const ints = entries(s.properties.ints).map(([k, v]) => { const n = b.createString(k); b.startObject(2); b.addFieldOffset(0, n, 0); b.addFieldInt64(1, BigInt(v), BigInt(0)); return b.endObject(); });
  const floats = entries(s.properties.floats).map(([k, v]) => { const n = b.createString(k); b.startObject(2); b.addFieldOffset(0, n, 0); b.addFieldFloat32(1, v, 0); return b.endObject(); });
  const strings = entries(s.properties.strings).map(([k, v]) => { const n = b.createString(k); const sv = b.createString(v); b.startObject(2); b.addFieldOffset(0, n, 0); b.addFieldOffset(1, sv, 0); return b.endObject(); });
  const iv = vector(b, ints);
  const fv = vector(b, floats);
  const sv = vector(b, strings);
  b.startObject(3);
  b.addFieldOffset(0, iv, 0);
  b.addFieldOffset(1, fv, 0);
  b.addFieldOffset(2, sv, 0);
  const bag = b.endObject();
  b.startObject(4);
  b.addFieldInt32(0, 2, 0);
  b.addFieldOffset(1, module, 0);
  b.addFieldOffset(2, groupsVec, 0);
  b.addFieldOffset(3, bag, 0);
  b.finish(b.endObject(), 'ODTC');
  return b.asUint8Array().slice();
}
