// Shape inference, part 2: what a per-op rule sees. Rules are pure functions of
// the node and an Env (shapes, types and tracked small integer values of the
// inputs) returning one shape and element type per output.
import type { NodeProto, TensorProto } from '../proto';
import { DataType } from '../proto';
import type { Dim } from './dims';

/** Values of a small integer tensor: its dims (numbers or symbols), and whether it is a scalar. */
export interface IntValue { scalar: boolean; vals: Dim[] }

export interface Env {
  shape(name: string | undefined): Dim[] | undefined;
  dtype(name: string | undefined): number | undefined;
  value(name: string | undefined): IntValue | undefined;
  ints(name: string | undefined): number[] | undefined;
  setValue(name: string, v: IntValue): void;
  tensorValue(name: string, t: TensorProto): void;
}

export type Result = [(Dim[] | undefined)[], (number | undefined)[]];

/** One op's inference: the shapes and element types of its outputs. */
export type ShapeRule = (node: NodeProto, env: Env) => Result;

export const MAX_TRACKED = 64;
export const INT_TYPES = new Set([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64]);

/** The length of a 1-D tensor whose length is static (an axes or shape input), else undefined. */
export function staticLength(env: Env, name: string | undefined): number | undefined {
  const s = env.shape(name);
  return s && s.length === 1 && typeof s[0] === 'number' ? s[0] : undefined;
}

/** A table of rules for several ops sharing one function. */
export function sameRule(ops: string[], rule: ShapeRule): Record<string, ShapeRule> {
  return Object.fromEntries(ops.map((op) => [op, rule]));
}
