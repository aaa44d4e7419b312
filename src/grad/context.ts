// Gradient builder: the RuleContext handed to each rule, built from the forward
// graph's index. Shared by the driver and by the per-rule gradient checks.
import { DataType, NodeProto, TensorProto } from '../onnx/proto';
import { attrFloat, attrFloats, attrInt, attrInts, attrString, attrTensor } from '../onnx/attrs';
import { tensorToInts, tensorToNumbers } from '../onnx/tensor';
import { Emitter } from './emit';
import type { Dim, RuleContext } from './types';

export interface ConstantSource {
  /** An initializer by name. */
  initializer(name: string): TensorProto | undefined;
  /** The node producing a tensor (to see through Constant nodes). */
  producer(name: string): NodeProto | undefined;
}

export function constantInts(src: ConstantSource, name: string): number[] | undefined {
  if (!name) return undefined;
  const init = src.initializer(name);
  if (init) return intsOf(init);
  const p = src.producer(name);
  if (p?.op_type === 'Constant') {
    const t = attrTensor(p, 'value');
    if (t) return intsOf(t);
    const ints = attrInts(p, 'value_ints');
    if (ints) return ints;
    const i = attrInt(p, 'value_int');
    if (i !== undefined) return [i];
  }
  return undefined;
}

/** Numeric values of a constant tensor of any numeric type (e.g. Pow's float exponent). */
export function constantNumbers(src: ConstantSource, name: string): number[] | undefined {
  if (!name) return undefined;
  const p = src.producer(name);
  const constant = p?.op_type === 'Constant' ? p : undefined;
  const t = src.initializer(name) ?? (constant && attrTensor(constant, 'value'));
  if (t) {
    try {
      return tensorToNumbers(t);
    } catch {
      return undefined; // a type we do not read (float16, ...): the rule treats the input as dynamic
    }
  }
  if (!constant) return undefined;
  const f = attrFloat(constant, 'value_float');
  if (f !== undefined) return [f];
  const i = attrInt(constant, 'value_int');
  return attrFloats(constant, 'value_floats') ?? attrInts(constant, 'value_ints') ?? (i !== undefined ? [i] : undefined);
}

/** Integer (or bool, as 0/1: Dropout's training_mode) values of a constant tensor. */
function intsOf(t: TensorProto): number[] {
  return t.data_type === DataType.BOOL ? tensorToNumbers(t) : tensorToInts(t);
}

export function makeRuleContext(args: {
  node: NodeProto;
  opset: number;
  gradOutputs: (string | null)[];
  needsGrad: (i: number) => boolean;
  emit: Emitter;
  constants: ConstantSource;
  shape: (name: string) => Dim[] | undefined;
}): RuleContext {
  const { node } = args;
  const inputs = node.input ?? [];
  return {
    node,
    opset: args.opset,
    numInputs: inputs.length,
    input: (i) => inputs[i] ?? '',
    output: (i) => node.output?.[i] ?? '',
    gradOutput: (i) => args.gradOutputs[i] ?? null,
    needsGrad: (i) => !!inputs[i] && args.needsGrad(i),
    attrInt: (name, dflt) => attrInt(node, name, dflt),
    attrInts: (name) => attrInts(node, name),
    attrFloat: (name, dflt) => attrFloat(node, name, dflt),
    attrString: (name, dflt) => attrString(node, name, dflt),
    constInts: (i) => constantInts(args.constants, inputs[i] ?? ''),
    constNumbers: (i) => constantNumbers(args.constants, inputs[i] ?? ''),
    shape: args.shape,
    emit: args.emit,
  };
}
