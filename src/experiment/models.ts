// Experiment, model helpers: the data spec of a tagger, a head's own dev scores
// (argmax of its logits in onnxruntime), moving trained weights back into the
// unpatched graph, and re-initialising one head's exclusive parameters for the
// trainability runs.
import * as ort from 'onnxruntime-node';
import { createOrtSession } from '../onnx/ort';
import { Model } from '../onnx/io';
import { GrlError } from '../onnx/errors';
import { nodeReads } from '../onnx/graph';
import { DataType, NodeProto, TensorProto } from '../onnx/proto';
import { dimsOf, float32Tensor, numElements } from '../onnx/tensor';
import { inferShapes } from '../onnx/shapes';
import { analyzeHeads, HeadInfo, isGrlNode } from '../patch/heads';
import { DataSpec, Example, IGNORE_INDEX, Rng, makeBatch } from '../data/jsonl';
import { dataSpecFor, embeddingLimits } from '../train/trainer';
import { sequenceLimit } from '../onnx/limits';
import { modelWithOutput } from '../probe/features';
import { ProbeScores, gaussian, scorePredictions } from '../probe/probe';

export interface HeadShape { tokenLevel: boolean; numClasses: number }

/** Token level and class count of a classification head, from static shapes. */
export function headShape(model: Model, head: HeadInfo): HeadShape {
  const s = inferShapes(model.proto.graph ?? {}).shape(head.output);
  const c = s?.[s.length - 1];
  if (!s || typeof c !== 'number') throw new GrlError(`${model.source}: cannot tell the number of classes of head '${head.name}' (output '${head.output}' has no static last dimension)`, { file: model.source });
  return { tokenLevel: s.length >= 3, numClasses: c };
}

/** The JSONL spec for the model's inputs and the labels of `heads`. */
export function taggerSpec(model: Model, heads: HeadInfo[], truncate = false): DataSpec {
  const g = model.proto.graph ?? {};
  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const modelInputs = (g.input ?? []).map((i) => i.name ?? '').filter((n) => !inits.has(n));
  const spec = dataSpecFor(
    { modelInputs, heads: heads.map((h) => ({ head: h.name, labelInput: h.name, output: h.output, kind: 'ce' as const, weight: 1, ...headShape(model, h) })) },
    embeddingLimits(model),
  );
  return { ...spec, sequenceLimit: sequenceLimit(model), truncate };
}

/** A head's own predictions (argmax of its logits) scored against the data's labels. */
export async function headScores(model: Model, examples: Example[], spec: DataSpec, head: HeadInfo, majorityLabel: number, threads?: number): Promise<ProbeScores> {
  const { numClasses: C, tokenLevel } = headShape(model, head);
  const session = await createOrtSession({ ...model, proto: modelWithOutput(model, head.output) }, threads ? { intraOpNumThreads: threads } : {});
  const gold: number[] = [];
  const pred: number[] = [];
  const labelSpec: DataSpec = { ...spec, labels: spec.labels.filter((l) => l.key === head.name) };
  try {
    for (let s = 0; s < examples.length; s += 64) {
      const batch = makeBatch(examples.slice(s, s + 64), labelSpec);
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) feeds[name] = new ort.Tensor('int64', batch.inputs[name], [batch.size, batch.seqLen]);
      const logits = (await session.run(feeds))[head.output].data as Float32Array;
      const labels = batch.labels[head.name] as BigInt64Array;
      const rows = tokenLevel ? batch.size * batch.seqLen : batch.size;
      for (let r = 0; r < rows; r++) {
        const y = Number(labels[r]);
        if (y === IGNORE_INDEX) continue;
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[r * C + c] > logits[r * C + best]) best = c;
        gold.push(y);
        pred.push(best);
      }
    }
  } finally {
    await session.release();
  }
  return scorePredictions(gold, pred, C, majorityLabel);
}

/**
 * The unpatched `base` graph with the weights of `trained` (same initializer names):
 * the amnesic encoder without its GRL, so fine-tuning it later is ordinary training.
 */
export function withWeightsOf(base: Model, trained: Model): Model {
  const byName = new Map((trained.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  let replaced = 0;
  const init = (base.proto.graph?.initializer ?? []).map((t) => {
    const u = byName.get(t.name ?? '');
    if (!u || u.data_type !== t.data_type || dimsOf(u).join() !== dimsOf(t).join()) return t;
    replaced++;
    return u;
  });
  if (!replaced) throw new GrlError(`${trained.source}: shares no initializer with ${base.source}; is it a trained copy of that model?`, { file: trained.source });
  return { ...base, proto: { ...base.proto, graph: { ...base.proto.graph, initializer: init } }, source: `${base.source} (weights of ${trained.source})`, baseDir: trained.baseDir };
}

/** Float initializers only `head`'s own nodes read: the parameters a fresh head replaces. */
export function headParameters(model: Model, headName: string): string[] {
  const a = analyzeHeads(model);
  const head = a.heads.find((h) => h.name === headName || h.output === headName);
  if (!head) throw new GrlError(`${model.source}: no head '${headName}'`, { file: model.source });
  const own = (n: NodeProto) => !isGrlNode(n) && a.outputsOf.get(n)?.length === 1 && a.outputsOf.get(n)?.[0] === head.output;
  const shared = new Set<string>();
  const mine = new Set<string>();
  for (const n of a.graph.nodes) for (const i of nodeReads(n)) (own(n) ? mine : shared).add(i);
  const params = a.graph.initializers.filter((t) => mine.has(t.name ?? '') && !shared.has(t.name ?? '') && t.data_type === DataType.FLOAT && dimsOf(t).length >= 1).map((t) => t.name ?? '');
  if (!params.length) throw new GrlError(`${model.source}: head '${headName}' has no parameters of its own to re-initialise`, { file: model.source });
  return params;
}

/**
 * A copy of the model whose head `headName` starts from scratch: matrices N(0, std²), biases 0,
 * LayerNorm scales 1. Seeded, and independent of the encoder weights, so two encoders get the same head.
 */
export function freshHead(model: Model, headName: string, std: number, seed: number): { model: Model; params: string[] } {
  const params = headParameters(model, headName);
  const set = new Set(params);
  const scales = new Set((model.proto.graph?.node ?? []).filter((n) => n.op_type === 'LayerNormalization').map((n) => n.input?.[1] ?? ''));
  const rng = new Rng(seed);
  const init: TensorProto[] = (model.proto.graph?.initializer ?? []).map((t) => {
    const name = t.name ?? '';
    if (!set.has(name)) return t;
    const dims = dimsOf(t);
    const v = new Float32Array(numElements(dims));
    if (dims.length >= 2) for (let i = 0; i < v.length; i++) v[i] = std * gaussian(rng);
    else if (scales.has(name)) v.fill(1);
    return float32Tensor(name, dims, v);
  });
  return { model: { ...model, proto: { ...model.proto, graph: { ...model.proto.graph, initializer: init } }, source: `${model.source} (fresh ${headName} head)` }, params };
}
