// Graph IR helpers: reading and making node attributes with their types.
import { AttrType, AttributeProto, GraphProto, NodeProto, TensorProto, toNumber } from './proto';

export function findAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, dflt: number): number;
export function attrInt(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = findAttr(node, name);
  return a ? toNumber(a.i) : dflt;
}

export function attrFloat(node: NodeProto, name: string): number | undefined;
export function attrFloat(node: NodeProto, name: string, dflt: number): number;
export function attrFloat(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = findAttr(node, name);
  return a ? a.f ?? 0 : dflt;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? (a.ints ?? []).map((v) => toNumber(v)) : undefined;
}

export function attrFloats(node: NodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? [...(a.floats ?? [])] : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined;
export function attrString(node: NodeProto, name: string, dflt: string): string;
export function attrString(node: NodeProto, name: string, dflt?: string): string | undefined {
  const a = findAttr(node, name);
  return a ? Buffer.from(a.s ?? new Uint8Array(0)).toString('utf8') : dflt;
}

export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return findAttr(node, name)?.t;
}

/** An attribute value as written in new nodes: numbers are ints unless wrapped with `float()`. */
export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorProto }
  | { kind: 'graph'; value: GraphProto };

export const A = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorProto): AttrValue => ({ kind: 'tensor', value }),
};

export function makeAttr(name: string, v: AttrValue): AttributeProto {
  switch (v.kind) {
    case 'int': return { name, type: AttrType.INT, i: v.value };
    case 'float': return { name, type: AttrType.FLOAT, f: v.value };
    case 'ints': return { name, type: AttrType.INTS, ints: v.value };
    case 'floats': return { name, type: AttrType.FLOATS, floats: v.value };
    case 'string': return { name, type: AttrType.STRING, s: Buffer.from(v.value, 'utf8') };
    case 'tensor': return { name, type: AttrType.TENSOR, t: v.value };
    case 'graph': return { name, type: AttrType.GRAPH, g: v.value };
  }
}

export function makeAttrs(attrs: Record<string, AttrValue | undefined> | undefined): AttributeProto[] {
  if (!attrs) return [];
  return Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => makeAttr(k, v as AttrValue));
}

/** Set (or replace) one attribute of a node in place. */
export function setAttr(node: NodeProto, name: string, v: AttrValue): void {
  const attrs = (node.attribute ??= []);
  const i = attrs.findIndex((a) => a.name === name);
  const a = makeAttr(name, v);
  if (i >= 0) attrs[i] = a;
  else attrs.push(a);
}
