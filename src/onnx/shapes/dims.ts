// Shape inference, part 1: dims. A dim is a number, a symbol (dim_param, or
// `min(s,N)` for a prefix slice of a fixed buffer) or null (unknown); a shape
// is undefined when even its rank is unknown. Broadcasting and products answer
// null unless the result is certain: a wrong static shape is worse than none.
import { ValueInfoProto, toNumber } from '../proto';
import type { Dim } from '../../grad/types';

export type { Dim };

/** The symbol s of a `min(s,N)` dim (a prefix slice of a fixed-size buffer), else undefined. */
function minOf(d: string): string | undefined {
  return /^min\((.+),([1-9][0-9]*)\)$/.exec(d)?.[1];
}

/** Broadcast two dims (numpy rules), answering null unless the result is certain. */
function bdim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  // min(b, N) with N >= 1 against b: if either is 1 both are, so the result is always b.
  if (typeof a === 'string' && minOf(a) === b) return b;
  if (typeof b === 'string' && minOf(b) === a) return a;
  // A number other than 1 wins against anything else (the other side must be 1 or equal).
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null; // two different symbols or an unknown: either could be 1
}

export function broadcastShapes(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const ss = shapes as Dim[][];
  const rank = Math.max(0, ...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let d: Dim = 1;
    for (const s of ss) {
      const j = k - (rank - s.length);
      if (j >= 0) d = bdim(d, s[j]);
    }
    out.push(d);
  }
  return out;
}

export function product(ds: Dim[]): Dim {
  let p = 1;
  let sym: Dim = null;
  for (const d of ds) {
    if (typeof d === 'number') p *= d;
    else if (d === null || sym !== null) return null;
    else sym = d;
  }
  if (sym === null) return p;
  return p === 1 ? sym : null;
}

/**
 * numel(input) / numel(other output dims), cancelling symbols by name; null when not certain.
 * [b, s, 32] to [b, -1, 4, 8] gives s: the numbers cancel (32 / 32) and one symbol is left.
 */
export function inferMinusOne(input: Dim[], others: Dim[]): Dim {
  const num = [...input];
  let den = 1;
  for (const d of others) {
    if (typeof d === 'number') { den *= d; continue; }
    if (d === null) return null;
    const k = num.indexOf(d);
    if (k < 0) return null;
    num.splice(k, 1);
  }
  if (num.includes(null)) return null;
  const numeric = (num.filter((d) => typeof d === 'number') as number[]).reduce((a, b) => a * b, 1);
  const symbols = num.filter((d) => typeof d === 'string');
  if (den === 0 || numeric % den !== 0) return null;
  const q = numeric / den;
  if (symbols.length === 0) return q;
  return symbols.length === 1 && q === 1 ? symbols[0] : null;
}

export const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** A shape of `rank` unknown dims (the rank is all we know). */
export const unknownDims = (rank: number): Dim[] => Array.from({ length: rank }, () => null);

export function tensorDims(vi: ValueInfoProto): Dim[] | undefined {
  const s = vi.type?.tensor_type?.shape;
  if (!s) return undefined;
  // Decoded messages carry proto defaults on their prototype (dim_value 0), so only an own
  // dim_value counts, and a named dim wins.
  return (s.dim ?? []).map((d) => {
    if (d.dim_param) return d.dim_param;
    return Object.prototype.hasOwnProperty.call(d, 'dim_value') && d.dim_value !== undefined && d.dim_value !== null ? toNumber(d.dim_value) : null;
  });
}

/** Per-dim merge of two answers for one tensor; disagreeing ranks or numbers mean we know nothing. */
export function merge(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.length !== b.length) return undefined;
  const out: Dim[] = [];
  for (let k = 0; k < a.length; k++) {
    const x = a[k];
    const y = b[k];
    if (typeof x === 'number' && typeof y === 'number' && x !== y) return undefined;
    out.push(typeof x === 'number' ? x : typeof y === 'number' ? y : x ?? y);
  }
  return out;
}
