// `heads add` / `heads remove`: attach task heads to an encoder export (or
// take one off). The input model is not modified: the graph's lists are copied
// and initializers shared. A head reads a hidden-state tensor [B, T, d]
// (`last_hidden_state` by default), optionally pools it to [B, d], and writes
// `<name>_logits`; `adversarial` splices the GRL `patch` would add.
import type { Model } from '../onnx/io';
import type { ModelProto, ValueInfoProto } from '../onnx/proto';
import { DataType } from '../onnx/proto';
import { Graph, opsetVersion } from '../onnx/graph';
import { GrlError, GraphError } from '../onnx/errors';
import { inferShapes, ShapeInference, Dim } from '../onnx/shapes';
import { isFloatType } from '../onnx/tensor';
import { patchModel } from '../patch/patch';
import { analyzeHeads, HeadAnalysis, resolveHead, isGrlNode } from '../patch/heads';
import { findWordEmbedding, hiddenStates } from './encoder';
import { HeadEmitter } from './build';
import { headRng } from './init';
import type { Rng } from '../data/jsonl';
import { HeadKind, HeadRecord, readHeadRecords, writeHeadRecords, setMetadata } from './metadata';
import { ID2LABEL_PREFIX } from './labels';
import { buildMlmHead } from './mlm';

export interface AddHeadSpec {
  name: string;
  /** Number of classes (MLM: taken from the vocabulary). Optional when `labels` are given. */
  classes?: number;
  /** 'token' (default): [B, T, C]; 'seq': [B, C] from `pool`; 'mlm': the masked-LM head. */
  kind?: HeadKind;
  /** Hidden-state tensor [B, T, d] to read (default: last_hidden_state, or the encoder's one [B, T, d] output). */
  from?: string;
  /** 'seq' heads: the first token (default) or the mean over attention_mask == 1. */
  pool?: 'cls' | 'mean';
  /** A dense + GELU layer of this width before the projection. */
  mlp?: number;
  /** Splice a GRL with this λ before the head. */
  adversarial?: number;
  /** Class names, stored as `grl-onnx.id2label.<name>`. */
  labels?: string[];
  /** MLM: decoder uses the word-embedding table (default true). */
  tieEmbeddings?: boolean;
}

export interface AddHeadsOptions {
  /** Seed of the parameter initialisation (default 0). */
  seed?: number;
}

export interface AddHeadsResult {
  model: Model;
  heads: HeadRecord[];
  warnings: string[];
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const MIN_OPSET = 13;

/** A copy whose graph lists and metadata can be appended to without touching the input. */
function copyForAdd(p: ModelProto): ModelProto {
  const g = p.graph ?? {};
  return {
    ...p,
    opset_import: [...(p.opset_import ?? [])],
    metadata_props: [...(p.metadata_props ?? [])],
    graph: { ...g, node: [...(g.node ?? [])], initializer: [...(g.initializer ?? [])], input: [...(g.input ?? [])], output: [...(g.output ?? [])], value_info: [...(g.value_info ?? [])] },
  };
}

export function addHeads(model: Model, specs: AddHeadSpec[], opts: AddHeadsOptions = {}): AddHeadsResult {
  const src = model.source;
  const fail = (msg: string) => new GrlError(`${src}: ${msg}`, { file: src });
  if (!specs.length) throw fail('give at least one head to add');
  const proto = copyForAdd(model.proto);
  let out: Model = { ...model, proto };
  const graph = new Graph(proto.graph ?? {});
  const opset = opsetVersion(proto) ?? 0;
  if (opset < MIN_OPSET) throw fail(`heads add needs ai.onnx opset >= ${MIN_OPSET}; the model has ${opset}`);
  const analysis = analyzeHeads(model, graph);
  const shapes = inferShapes(graph.proto);
  const records = readHeadRecords(model);
  const taken = new Map<string, string>();
  for (const h of analysis.heads) taken.set(h.name, h.output);
  for (const r of records) taken.set(r.name, r.output);
  const added: HeadRecord[] = [];
  const seed = opts.seed ?? 0;

  for (const spec of specs) {
    const kind = spec.kind ?? 'token';
    const name = spec.name;
    if (!NAME_RE.test(name)) throw fail(`head name '${name}' must be letters, digits, '_' or '-' (starting with a letter or '_')`);
    const output = kind === 'mlm' ? 'mlm_logits' : `${name}_logits`;
    const clash = taken.get(name) ?? (graph.isGraphOutput(output) || graph.producer(output) ? output : undefined);
    if (clash) throw fail(`head '${name}' already exists (output '${clash}'); remove it first or pick another name`);
    // Training feeds a head's labels through an input named after the head.
    if (kind !== 'mlm' && (graph.isGraphInput(name) || graph.initializer(name))) {
      throw fail(`head name '${name}' is already the name of a model ${graph.isGraphInput(name) ? 'input' : 'initializer'}; training feeds the head's labels under its name, so pick another`);
    }
    const from = spec.from ?? defaultHiddenTensor(model, graph, analysis, shapes);
    const d = checkHidden(src, graph, shapes, from);
    const emit = new HeadEmitter(graph, opset, `heads.${name}`, `heads.${name}`);
    const rng = headRng(seed, name);
    const record: HeadRecord = kind === 'mlm'
      ? buildMlmHead(emit, graph, { name, output, from, d, tie: spec.tieEmbeddings ?? true, rng, source: src, baseDir: model.baseDir })
      : buildClassifierHead(emit, graph, spec, { name, output, kind, from, d, rng }, fail);
    if (spec.labels && spec.labels.length !== record.classes) {
      throw fail(`head '${name}': ${spec.labels.length} label names for ${record.classes} classes`);
    }
    const batch = shapes.shape(from)?.[0] ?? 'batch';
    const seq = shapes.shape(from)?.[1] ?? 'sequence';
    proto.graph?.output?.push(outputInfo(output, kind === 'seq' ? [batch, record.classes] : [batch, seq, record.classes]));
    graph.reindex();
    if (spec.labels) setMetadata(proto, ID2LABEL_PREFIX + name, JSON.stringify(spec.labels));
    added.push(record);
    taken.set(name, output);
  }
  writeHeadRecords(proto, [...records, ...added]);
  try {
    graph.validate();
  } catch (e) {
    throw new GraphError(`${src}: adding heads produced an invalid graph: ${(e as Error).message}`);
  }
  const warnings: string[] = [];
  const adversarial = specs.filter((s) => s.adversarial !== undefined);
  if (adversarial.length) {
    const patched = patchModel(out, { heads: adversarial.map((s) => ({ name: s.name, lambda: s.adversarial })) });
    out = patched.model;
    warnings.push(...patched.warnings);
  }
  return { model: out, heads: added, warnings };
}

/** The new head's tensors as addHeads resolved them. */
interface HeadPlace {
  name: string;
  output: string;
  kind: HeadKind;
  from: string;
  d: number;
  rng: Rng;
}

/** A token or seq classifier: optional pooling (seq), an optional dense + GELU layer, then the projection to `output`. */
function buildClassifierHead(emit: HeadEmitter, graph: Graph, spec: AddHeadSpec, at: HeadPlace, fail: (msg: string) => GrlError): HeadRecord {
  const { name, output, kind, from, d, rng } = at;
  const classes = spec.classes ?? spec.labels?.length;
  if (classes === undefined) throw fail(`head '${name}': give the number of classes (NAME:CLASSES)`);
  if (!Number.isInteger(classes) || classes < 2) throw fail(`head '${name}': classes must be an integer >= 2, got ${classes}`);
  if (spec.mlp !== undefined && (!Number.isInteger(spec.mlp) || spec.mlp < 1)) throw fail(`head '${name}': --mlp width must be a positive integer, got ${spec.mlp}`);
  if (spec.pool && kind !== 'seq') throw fail(`head '${name}': pooling applies to :seq heads only`);
  let x = from;
  const pool = kind === 'seq' ? spec.pool ?? 'cls' : undefined;
  if (pool === 'cls') x = emit.poolCls(x);
  if (pool === 'mean') {
    if (!graph.isGraphInput('attention_mask')) throw fail(`head '${name}': --pool mean needs an 'attention_mask' input, and the model has none`);
    x = emit.poolMean(x, 'attention_mask');
  }
  let width = d;
  if (spec.mlp) {
    x = emit.gelu(emit.linear(x, 'dense.', d, spec.mlp, rng), 'dense/');
    width = spec.mlp;
  }
  emit.linear(x, '', width, classes, rng, output);
  return { name, output, kind, from, ...(pool ? { pool } : {}), classes, ...(spec.mlp ? { mlp: spec.mlp } : {}) };
}

function outputInfo(name: string, dims: Dim[]): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((x) => (typeof x === 'number' ? { dim_value: x } : { dim_param: x ?? '' })) } } } };
}

/** last_hidden_state, else the encoder's one [B, T, d] output, else the tensor the existing heads read. */
export function defaultHiddenTensor(model: Model, graph: Graph, analysis: HeadAnalysis, shapes: ShapeInference): string {
  if (graph.isGraphOutput('last_hidden_state')) return 'last_hidden_state';
  const d = findWordEmbedding(graph)?.d;
  const rank3 = analysis.trunkOutputs.filter((o) => {
    const s = shapes.shape(o);
    return s?.length === 3 && (d === undefined || s[2] === d);
  });
  if (rank3.length === 1) return rank3[0];
  const splice = analysis.heads.map((h) => h.spliceTensor).find((t) => t && shapes.shape(t)?.length === 3);
  if (splice) return splice;
  const candidates = hiddenStates(graph, shapes).map((h) => h.tensor);
  throw new GrlError(`${model.source}: cannot tell which tensor holds the final hidden states; give --from TENSOR${candidates.length ? ` (candidates: ${candidates.join(', ')})` : ''}`, { file: model.source });
}

/** The hidden size d of a valid --from tensor: a float tensor of rank 3. */
function checkHidden(src: string, graph: Graph, shapes: ShapeInference, t: string): number {
  const where = `${src}: --from '${t}'`;
  if (!graph.producer(t) && !graph.isGraphInput(t)) throw new GrlError(`${where}: no such tensor in the graph (inspect lists the hidden states)`, { file: src });
  if (graph.initializer(t)) throw new GrlError(`${where} is an initializer, not hidden states`, { file: src });
  const dt = shapes.dtype(t);
  if (dt !== undefined && !isFloatType(dt)) throw new GrlError(`${where} is not a float tensor`, { file: src });
  const s = shapes.shape(t);
  if (!s) throw new GrlError(`${where}: its rank is unknown; expected hidden states [batch, sequence, d]`, { file: src });
  const show = `[${s.map((x) => x ?? '?').join(', ')}]`;
  if (s.length !== 3) throw new GrlError(`${where} has rank ${s.length} ${show}; expected hidden states [batch, sequence, d]`, { file: src });
  if (typeof s[2] !== 'number') throw new GrlError(`${where} ${show}: the hidden size (last dim) must be static`, { file: src });
  return s[2];
}

export interface RemoveHeadResult {
  model: Model;
  head: string;
  output: string;
  removedNodes: number;
  removedInitializers: string[];
}

/** Remove a head: its output, its own nodes (and GRL), the initializers nothing else reads, its metadata. */
export function removeHead(model: Model, name: string): RemoveHeadResult {
  let info = resolveHead(model, name);
  let m = model;
  if (info.grl) m = patchModel(model, { heads: [{ name: info.output }], remove: true }).model;
  const proto = copyForAdd(m.proto);
  const graph = new Graph(proto.graph ?? {});
  const analysis = analyzeHeads({ ...m, proto }, graph);
  info = analysis.heads.find((h) => h.output === info.output) ?? info;
  const own = new Set(graph.nodes.filter((n) => { const o = analysis.outputsOf.get(n); return o?.length === 1 && o[0] === info.output && !isGrlNode(n); }));
  const produced = new Set([...own].flatMap((n) => n.output ?? []));
  const read = new Set([...own].flatMap((n) => n.input ?? []));
  const g = proto.graph ?? {};
  g.node = (g.node ?? []).filter((n) => !own.has(n));
  g.output = (g.output ?? []).filter((o) => o.name !== info.output);
  g.value_info = (g.value_info ?? []).filter((v) => !produced.has(v.name ?? ''));
  const stillRead = new Set([...(g.node ?? []).flatMap((n) => n.input ?? []), ...(g.output ?? []).map((o) => o.name ?? '')]);
  const dropped = (g.initializer ?? []).filter((t) => read.has(t.name ?? '') && !stillRead.has(t.name ?? '')).map((t) => t.name ?? '');
  const drop = new Set(dropped);
  g.initializer = (g.initializer ?? []).filter((t) => !drop.has(t.name ?? ''));
  g.input = (g.input ?? []).filter((i) => !drop.has(i.name ?? ''));
  const records = readHeadRecords(m);
  writeHeadRecords(proto, records.filter((r) => r.output !== info.output));
  setMetadata(proto, ID2LABEL_PREFIX + info.name, undefined);
  new Graph(g).validate();
  return { model: { ...m, proto }, head: info.name, output: info.output, removedNodes: own.size, removedInitializers: dropped };
}
