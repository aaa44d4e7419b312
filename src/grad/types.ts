// Gradient builder: the contract between the driver (backward.ts) and the
// per-op rules in rules/. A rule is a small pure function: it reads the
// forward node through a RuleContext, emits new nodes through ctx.emit, and
// returns one gradient tensor name (or null) per forward input.
import { NodeProto } from '../onnx/proto';
import { GrlError } from '../onnx/errors';
import type { Emitter } from './emit';

/** A static dimension: a number, a symbolic name, or null when unknown. */
export type Dim = number | string | null;

/** What the driver knows statically about tensor shapes (from value_info and inference). */
export interface ShapeInfo {
  /** The shape of a tensor, or undefined when even its rank is unknown. */
  shape(name: string): Dim[] | undefined;
}

export interface RuleContext {
  readonly node: NodeProto;
  /** Version of the default ONNX domain imported by the model. */
  readonly opset: number;
  /** Input i's tensor name; '' for an omitted optional input or past the end. */
  input(i: number): string;
  readonly numInputs: number;
  output(i: number): string;
  /** dLoss/dOutput(i), or null when no gradient flows into that output. */
  gradOutput(i: number): string | null;
  /** Whether the driver wants a gradient for input i (it lies on a path from a parameter). */
  needsGrad(i: number): boolean;
  attrInt(name: string, dflt: number): number;
  attrInts(name: string): number[] | undefined;
  attrFloat(name: string, dflt: number): number;
  attrString(name: string, dflt: string): string;
  /** Integer values of input i when it is constant (initializer or Constant node); undefined when dynamic. */
  constInts(i: number): number[] | undefined;
  /** Numeric values of input i (any numeric type) when it is constant; undefined when dynamic. */
  constNumbers(i: number): number[] | undefined;
  /** Static shape of a tensor, when known. */
  shape(name: string): Dim[] | undefined;
  /** Emits the gradient nodes, named `<node>/grad/<what>`. */
  readonly emit: Emitter;
}

/** One gradient name (or null: no gradient / not needed) per forward input. */
export type GradRule = (ctx: RuleContext) => (string | null)[];

export interface RuleEntry {
  opType: string;
  /** '' (default ONNX domain) unless stated. */
  domain?: string;
  rule: GradRule;
  /**
   * Input indices that are never differentiable (shapes, indices, axes, conditions).
   * The driver neither asks for nor expects gradients there.
   */
  nonDifferentiable?: number[];
  /** Opsets the rule was written for; the driver refuses others with a clear error. */
  minOpset?: number;
}

/**
 * Thrown when generation meets an op without a rule; names op, node and opset. A GrlError:
 * the user's model is the cause, so the CLI prints it as one line, not as an unexpected error.
 */
export class UnsupportedOpError extends GrlError {
  constructor(readonly opType: string, readonly nodeName: string, readonly opset: number, readonly domain = '') {
    super(`no gradient rule for op ${domain ? domain + '::' : ''}${opType} (node '${nodeName}', opset ${opset}); \`grl-onnx inspect\` lists the ops on a gradient path that have none`);
    this.name = 'UnsupportedOpError';
  }
}
