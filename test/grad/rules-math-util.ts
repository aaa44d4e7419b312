// Test helper: run one rule without onnxruntime, for the cases that must build no
// gradient or must refuse (no finite differences to compare against).
import { Emitter } from '../../src/grad/emit';
import { makeRuleContext } from '../../src/grad/context';
import { findRule } from '../../src/grad/rules';
import * as ort from 'onnxruntime-node';
import { A, AttrValue, makeAttrs } from '../../src/onnx/attrs';
import { DataType } from '../../src/onnx/proto';
import { F, makeModel, session, valueInfo } from '../helpers/build';

type RuleOpts = { opset?: number; shapes?: Record<string, (number | string | null)[]> };

export function ruleOutput(op: string, attrs: Record<string, AttrValue>, inputs: string[], outputs: string[], opts: RuleOpts = {}): (string | null)[] {
  return runRule(op, attrs, inputs, outputs, opts).grads;
}

/** The rule's gradients plus the nodes and constants it emitted. */
export function runRule(op: string, attrs: Record<string, AttrValue>, inputs: string[], outputs: string[], opts: RuleOpts = {}) {
  const node = { name: `${op}_node`, op_type: op, input: inputs, output: outputs, attribute: makeAttrs(attrs) };
  let k = 0;
  const emit = new Emitter({ uniqueName: (b) => `${b}_${k++}` }, `${op}_node/grad`, (n) => opts.shapes?.[n]);
  const ctx = makeRuleContext({
    node, opset: opts.opset ?? 17,
    gradOutputs: outputs.map((o) => `${o}_grad`),
    needsGrad: () => true,
    emit,
    constants: { initializer: () => undefined, producer: () => undefined },
    shape: (n) => emit.shapeOf(n),
  });
  const grads = findRule(op)!.rule(ctx);
  return { grads, nodes: emit.nodes, initializers: emit.initializers };
}

/** Cast(float -> double) forward, its rule's backward seeded with a double dY: returns dX. */
export async function castBackToFloat(dy: number[]): Promise<ort.Tensor> {
  const node = { name: 'cast', op_type: 'Cast', input: ['x'], output: ['y'], attribute: makeAttrs({ to: A.int(DataType.DOUBLE) }) };
  let k = 0;
  const emit = new Emitter({ uniqueName: (b) => `${b}_${k++}` }, 'cast/grad');
  const ctx = makeRuleContext({
    node, opset: 17, gradOutputs: ['dy'], needsGrad: () => true, emit,
    constants: { initializer: () => undefined, producer: () => undefined }, shape: () => undefined,
  });
  const [dx] = findRule('Cast')!.rule(ctx);
  const n = dy.length;
  const model = makeModel({
    nodes: [node, ...emit.nodes],
    inputs: [valueInfo('x', F, [n]), valueInfo('dy', DataType.DOUBLE, [n])],
    outputs: [valueInfo(dx!, F)],
    initializers: emit.initializers,
  });
  const s = await session(model);
  const r = await s.run({ x: new ort.Tensor('float32', new Float32Array(n), [n]), dy: new ort.Tensor('float64', Float64Array.from(dy), [n]) });
  await s.release();
  return r[dx!];
}
