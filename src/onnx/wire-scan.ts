// Model I/O, loading: a protobuf wire-format scan run before decoding. protobufjs
// decodes malformed bytes into half a model and drops fields its schema lacks; this
// scan throws on malformed bytes instead and records every unknown field, so that a
// save can refuse rather than silently drop them.
import * as protobuf from 'protobufjs';

const MAX_DEPTH = 64;

/**
 * Walk protobuf wire format against the schema: throws on malformed bytes and collects
 * fields the schema does not define. Payloads (raw_data, packed floats) are skipped by
 * length, so this costs one pass over the field headers, not over the bytes.
 */
export function scanWire(type: protobuf.Type, buf: Uint8Array, start: number, end: number, where: string, unknown: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`messages nested deeper than ${MAX_DEPTH} at ${where}`);
  let pos = start;
  const counts = new Map<number, number>();
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new Error(`truncated at byte ${pos} (in ${where})`);
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error(`bad varint at byte ${pos} (in ${where})`);
  };
  while (pos < end) {
    const tag = varint();
    const id = Math.floor(tag / 8);
    const wt = tag % 8;
    if (id === 0) throw new Error(`field number 0 at byte ${pos} (in ${where})`);
    const field = type.fieldsById[id];
    const index = counts.get(id) ?? 0;
    counts.set(id, index + 1);
    const fieldPath = field ? `${where}.${field.name}${field.repeated ? `[${index}]` : ''}` : `${where}.#${id}`;
    if (!field) unknown.push(fieldPath);
    switch (wt) {
      case 0: varint(); break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        const len = varint();
        if (pos + len > end) throw new Error(`truncated: field ${fieldPath} wants ${len} bytes, ${end - pos} left`);
        if (field) {
          field.resolve();
          if (field.resolvedType instanceof protobuf.Type) scanWire(field.resolvedType, buf, pos, pos + len, fieldPath, unknown, depth + 1);
        }
        pos += len;
        break;
      }
      default: throw new Error(`wire type ${wt} at byte ${pos} (in ${where}) is not valid protobuf`);
    }
    if (pos > end) throw new Error(`truncated (in ${where})`);
  }
}
