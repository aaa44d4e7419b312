// Training artifacts in ONNX Runtime's own training layout (`grl-onnx artifacts --layout ort`),
// which ORT's training builds (C++, C#, Python, CUDA, onnxruntime-web's training wasm) run
// unchanged. The rules come from ORT 1.19's orttraining/training_api (module.cc, optimizer.cc):
//
//  - training model: every trainable parameter p gets an input `<p>_grad.accumulation.buffer`
//    and a node com.microsoft::InPlaceAccumulatorV2(buffer, <p>_grad, lazy_reset_grad) whose
//    BOOL output `<p>_grad.accumulation.out` is a graph output; `lazy_reset_grad` (BOOL [1]) is
//    an input. ORT tells inputs apart by name only: a checkpoint parameter is a weight, the
//    suffixes below mark gradient buffers, and anything else is a user input (fed by position
//    in ORT's trainingInputNames order). So no user input or output may end in those suffixes.
//  - optimizer model: exactly one com.microsoft optimizer node over seq(tensor(float)) inputs
//    named learning_rate, step, params, gradients, then the state sequences; its one output is
//    a BOOL "updated" flag (ORT 1.19 reads it as bool).
//
// The other direction, for grl-onnx's own TrainingSession on stock onnxruntime-node (which has
// neither op): `fromOrtTrainingModel` removes the accumulators and outputs `<p>_grad` again (the
// session accumulates itself), and `readOrtOptimizer` turns the optimizer node back into the
// optimizer kind and hyperparameters of the fused update.
import { GrlError } from '../../onnx/errors';
import { A, attrFloat, attrInt, attrString, makeAttrs } from '../../onnx/attrs';
import { DataType, ModelProto, NodeProto, ValueInfoProto } from '../../onnx/proto';
import type { TrainingGraph } from '../../grad/training';
import { OptimizerHyperparameters, OptimizerKind, defaultHyperparameters } from '../optimizer';

export const MS_DOMAIN = 'com.microsoft';
export const LAZY_RESET_GRAD = 'lazy_reset_grad';
export const ACCUMULATION_BUFFER = '_grad.accumulation.buffer';
export const ACCUMULATION_OUT = '_grad.accumulation.out';
/** Name endings ORT's Module reads as gradients (utils::GetParamNameFromGradient). */
export const ORT_GRADIENT_SUFFIXES = [ACCUMULATION_BUFFER, ACCUMULATION_OUT, '_grad'] as const;

/** The optimizer models' inputs, in the order ORT's Optimizer requires them. */
export const ORT_OPTIMIZER_INPUTS: Record<OptimizerKind, readonly string[]> = {
  adamw: ['learning_rate', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'],
  sgd: ['learning_rate', 'step', 'params', 'gradients', 'first_order_moments'],
};
const OPTIMIZER_OPS: Record<string, OptimizerKind> = { AdamWOptimizer: 'adamw', SGDOptimizerV2: 'sgd' };
const CLIP_OP = 'InplaceClipGradNorm';
const ACCUMULATOR_OP = 'InPlaceAccumulatorV2';

function tensorInfo(name: string, elemType: number, dims: (number | string)[] | undefined): ValueInfoProto {
  const shape = dims && { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name, type: { tensor_type: { elem_type: elemType, shape } } };
}

function floatSeq(name: string): ValueInfoProto {
  return { name, type: { sequence_type: { elem_type: { tensor_type: { elem_type: DataType.FLOAT } } } } };
}

function withMsDomain(opsets: ModelProto['opset_import']): NonNullable<ModelProto['opset_import']> {
  const rest = (opsets ?? []).filter((o) => o.domain !== MS_DOMAIN);
  return [...rest, { domain: MS_DOMAIN, version: 1 }];
}

export const ROW_SPARSE_REFUSAL = '--layout ort cannot use --row-sparse-gradients: ORT\'s training runtime accumulates dense gradients only';

const reservedEnding = (name: string) => name === LAZY_RESET_GRAD || ORT_GRADIENT_SUFFIXES.some((s) => name.endsWith(s));

/**
 * Refuse what the ORT layout cannot express: row-sparse gradients, SGD with momentum or weight
 * decay (SGDOptimizerV2 has neither), and user inputs or outputs whose names ORT would take
 * for gradient buffers.
 */
export function checkOrtLayout(tg: TrainingGraph, optimizer: OptimizerKind, hyper: OptimizerHyperparameters): void {
  if (tg.outputs.rowGrads && Object.keys(tg.outputs.rowGrads).length) {
    throw new GrlError(ROW_SPARSE_REFUSAL);
  }
  if (optimizer === 'sgd' && (hyper.momentum !== 0 || hyper.weightDecay !== 0)) {
    throw new GrlError(`--layout ort --optimizer sgd supports neither momentum nor weight decay (ORT's SGDOptimizerV2 has none); got momentum ${hyper.momentum}, weight decay ${hyper.weightDecay}`);
  }
  const params = new Set(tg.params.map((p) => p.name));
  const graph = tg.training.graph ?? {};
  const gradOutputs = new Set(Object.values(tg.outputs.grads));
  const user = [
    ...(graph.input ?? []).map((i) => i.name ?? '').filter((n) => !params.has(n)),
    ...(graph.output ?? []).map((o) => o.name ?? '').filter((n) => !gradOutputs.has(n)),
  ];
  const bad = user.find(reservedEnding);
  if (bad !== undefined) {
    throw new GrlError(`--layout ort: training model input or output '${bad}' ends in a name ORT reserves for gradients (${[...ORT_GRADIENT_SUFFIXES, LAZY_RESET_GRAD].join(', ')}); rename it (or the head/label it comes from)`);
  }
}

/** The training graph in ORT's layout: accumulation buffers and InPlaceAccumulatorV2 instead of `<p>_grad` outputs. */
export function toOrtTrainingModel(tg: TrainingGraph): ModelProto {
  const graph = tg.training.graph ?? {};
  const trainable = tg.params.filter((p) => p.trainable);
  const gradOutputs = new Set(Object.values(tg.outputs.grads));
  const buffers: ValueInfoProto[] = [];
  const nodes: NodeProto[] = [];
  const flags: ValueInfoProto[] = [];
  for (const p of trainable) {
    const grad = tg.outputs.grads[p.name];
    if (!grad) throw new GrlError(`parameter '${p.name}' has no dense gradient output in the training graph`);
    const buffer = `${p.name}${ACCUMULATION_BUFFER}`;
    const out = `${p.name}${ACCUMULATION_OUT}`;
    buffers.push(tensorInfo(buffer, DataType.FLOAT, p.dims));
    flags.push(tensorInfo(out, DataType.BOOL, [1]));
    nodes.push({ name: `${p.name}/accumulate`, op_type: ACCUMULATOR_OP, domain: MS_DOMAIN, input: [buffer, grad, LAZY_RESET_GRAD], output: [out] });
  }
  // Loss first (ORT's convention), then the other user outputs, then the flags.
  const outputs = (graph.output ?? []).filter((o) => !gradOutputs.has(o.name ?? ''));
  outputs.sort((a, b) => Number(b.name === tg.outputs.loss) - Number(a.name === tg.outputs.loss));
  return {
    ...tg.training,
    opset_import: withMsDomain(tg.training.opset_import),
    graph: {
      ...graph,
      input: [...(graph.input ?? []), ...buffers, tensorInfo(LAZY_RESET_GRAD, DataType.BOOL, [1])],
      node: [...(graph.node ?? []), ...nodes],
      output: [...outputs, ...flags],
    },
  };
}

/**
 * ORT's optimizer model: one AdamWOptimizer (adam_mode 0 = torch.optim.AdamW, what grl-onnx
 * trains with) or SGDOptimizerV2, after an InplaceClipGradNorm when clipping is on.
 */
export function buildOrtOptimizerModel(kind: OptimizerKind, hyper: OptimizerHyperparameters): ModelProto {
  const nodes: NodeProto[] = [];
  let gradients = 'gradients';
  if (hyper.maxGradNorm > 0) {
    nodes.push({ name: 'optimizer/clip', op_type: CLIP_OP, domain: MS_DOMAIN, input: [gradients], output: ['clipped_gradients'], attribute: makeAttrs({ max_norm: A.float(hyper.maxGradNorm), norm_type: A.string('fro') }) });
    gradients = 'clipped_gradients';
  }
  if (kind === 'adamw') {
    nodes.push({
      name: 'optimizer/adamw', op_type: 'AdamWOptimizer', domain: MS_DOMAIN,
      input: ['learning_rate', 'step', 'params', gradients, 'first_order_moments', 'second_order_moments'],
      output: ['updated_flag'],
      attribute: makeAttrs({
        alpha: A.float(hyper.beta1), beta: A.float(hyper.beta2), epsilon: A.float(hyper.eps),
        weight_decay: A.float(hyper.weightDecay), correct_bias: A.int(1), adam_mode: A.int(0),
      }),
    });
  } else {
    // SGDOptimizerV2 reads neither step nor a state, but ORT requires both inputs by name.
    nodes.push({ name: 'optimizer/sgd', op_type: 'SGDOptimizerV2', domain: MS_DOMAIN, input: ['learning_rate', 'params', gradients], output: ['updated_flag'] });
  }
  const scalarInputs = [tensorInfo('learning_rate', DataType.FLOAT, [1]), tensorInfo('step', DataType.INT64, [1])];
  return {
    ir_version: 8,
    producer_name: 'grl-onnx',
    opset_import: [{ domain: '', version: 17 }, { domain: MS_DOMAIN, version: 1 }],
    graph: {
      name: `${kind}_optimizer`,
      node: nodes,
      input: [...scalarInputs, ...ORT_OPTIMIZER_INPUTS[kind].slice(2).map(floatSeq)],
      // BOOL [1] is what the kernels write; SGDOptimizerV2's schema infers a scalar and refuses a
      // declared [1] (ORT then warns that the kernel's {1} differs from it), so SGD declares no shape.
      output: [tensorInfo('updated_flag', DataType.BOOL, kind === 'adamw' ? [1] : undefined)],
    },
  };
}

/** Whether a training model is in ORT's layout (it has InPlaceAccumulatorV2 nodes or lazy_reset_grad). */
export function isOrtTrainingModel(m: ModelProto): boolean {
  const g = m.graph ?? {};
  return (g.input ?? []).some((i) => i.name === LAZY_RESET_GRAD) || (g.node ?? []).some((n) => n.op_type === ACCUMULATOR_OP);
}

/**
 * Undo toOrtTrainingModel (or read a training model ORT's own artifact builder wrote): drop the
 * accumulators, their buffers and flags and lazy_reset_grad, and output each gradient the
 * accumulator read. Returns the model and the gradient output of each parameter.
 */
export function fromOrtTrainingModel(m: ModelProto, where: string): { model: ModelProto; grads: Record<string, string> } {
  const g = m.graph ?? {};
  const inputs = new Map((g.input ?? []).map((i) => [i.name ?? '', i]));
  const grads: Record<string, string> = {};
  const gradInfos: ValueInfoProto[] = [];
  const dropped = new Set<string>([LAZY_RESET_GRAD]);
  const nodes: NodeProto[] = [];
  for (const n of g.node ?? []) {
    if (n.op_type !== ACCUMULATOR_OP) {
      nodes.push(n);
      continue;
    }
    const [buffer, grad] = n.input ?? [];
    if (n.domain !== MS_DOMAIN || !buffer?.endsWith(ACCUMULATION_BUFFER) || !grad) {
      throw new GrlError(`${where}: node '${n.name ?? ''}' (${n.domain ?? ''}::${ACCUMULATOR_OP}) does not accumulate into a '<param>${ACCUMULATION_BUFFER}' input`, { file: where });
    }
    const param = buffer.slice(0, -ACCUMULATION_BUFFER.length);
    const info = inputs.get(buffer);
    if (!info) throw new GrlError(`${where}: accumulation buffer '${buffer}' is not a graph input`, { file: where });
    grads[param] = grad;
    gradInfos.push({ ...info, name: grad });
    dropped.add(buffer);
    for (const o of n.output ?? []) if (o) dropped.add(o);
  }
  const model: ModelProto = {
    ...m,
    opset_import: (m.opset_import ?? []).filter((o) => o.domain !== MS_DOMAIN || nodes.some((n) => n.domain === MS_DOMAIN)),
    graph: {
      ...g,
      input: (g.input ?? []).filter((i) => !dropped.has(i.name ?? '')),
      node: nodes,
      output: [...(g.output ?? []).filter((o) => !dropped.has(o.name ?? '')), ...gradInfos],
    },
  };
  return { model, grads };
}

/** The optimizer kind and hyperparameters of an ORT-layout optimizer model; undefined when it is not one. */
export function readOrtOptimizer(m: ModelProto, where: string): { kind: OptimizerKind; hyperparameters: OptimizerHyperparameters } | undefined {
  const nodes = m.graph?.node ?? [];
  const opt = nodes.filter((n) => n.domain === MS_DOMAIN && OPTIMIZER_OPS[n.op_type ?? '']);
  if (!opt.length) return undefined;
  if (opt.length > 1) throw new GrlError(`${where}: ${opt.length} optimizer nodes; ORT's layout has exactly one`, { file: where });
  const node = opt[0];
  const kind = OPTIMIZER_OPS[node.op_type ?? ''];
  const hyper = { ...defaultHyperparameters(kind) };
  if (kind === 'adamw') {
    const mode = attrInt(node, 'adam_mode', 0);
    const bias = attrInt(node, 'correct_bias', 1);
    if (mode !== 0 || bias !== 1) {
      throw new GrlError(`${where}: AdamWOptimizer with adam_mode ${mode}, correct_bias ${bias}: grl-onnx runs only adam_mode 0 with correct_bias 1 (torch.optim.AdamW); regenerate with grl-onnx artifacts --layout ort`, { file: where });
    }
    // The schema's defaults, as ORT applies them when an attribute is absent.
    hyper.beta1 = attrFloat(node, 'alpha', 0.9);
    hyper.beta2 = attrFloat(node, 'beta', 0.999);
    hyper.eps = attrFloat(node, 'epsilon', 1e-8);
    hyper.weightDecay = attrFloat(node, 'weight_decay', 1e-2);
  }
  for (const n of nodes) {
    if (n.op_type !== CLIP_OP) continue;
    const norm = attrString(n, 'norm_type', 'fro');
    if (norm !== 'fro') throw new GrlError(`${where}: ${CLIP_OP} with norm_type '${norm}'; only 'fro' exists`, { file: where });
    hyper.maxGradNorm = attrFloat(n, 'max_norm', 1);
  }
  return { kind, hyperparameters: hyper };
}
