// Gradient builder: masked-LM heads run on the masked positions only. For a
// cross-entropy loss on a head `heads add --mlm` recorded (kind 'mlm' in
// `grl-onnx.heads`), the rows whose label is not -100 are gathered from the
// hidden states before the head's per-position nodes (dense, GELU, LayerNorm,
// decoder), and the labels with them:
//   rows   = Gather(Reshape(hidden, [-1, d]), idx)   idx = NonZero(labels != -100)
//   logits = head(rows)                              [N, vocab] instead of [B, T, vocab]
// The loss is the same mean over the N labelled positions, so its value and
// every gradient equal plain CE over the full logits, while time and memory
// scale with N rather than B·T·vocab. Nodes the head shares with anything
// else (the encoder, other heads) are untouched.
import type { Model } from '../onnx/io';
import type { NodeProto } from '../onnx/proto';
import { nodeReads } from '../onnx/graph';
import { A, makeAttrs } from '../onnx/attrs';
import { readHeadRecords } from '../heads/metadata';
import { Emitter, NameSource } from './emit';
import type { Dim } from './types';

export interface MlmLoss {
  head: string;
  output: string;
  labelInput: string;
  kind: string;
}

export interface MaskedRows {
  nodes: NodeProto[];
  /** Per gathered head: the labels of the kept rows [N] (the loss reads these). */
  labels: Map<string, string>;
  /** Per gathered head: the logits' shape, [N, vocab]. */
  shapes: Map<string, Dim[]>;
}

const IGNORE_INDEX = -100;

function producers(nodes: NodeProto[]): Map<string, NodeProto> {
  const p = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) p.set(o, n);
  return p;
}

function ancestors(tensor: string, producer: Map<string, NodeProto>): Set<NodeProto> {
  const seen = new Set<NodeProto>();
  const stack = [tensor];
  while (stack.length) {
    const n = producer.get(stack.pop() as string);
    if (!n || seen.has(n)) continue;
    seen.add(n);
    for (const i of nodeReads(n)) if (i) stack.push(i);
  }
  return seen;
}

export function gatherMlmRows(model: Model, nodes: NodeProto[], losses: MlmLoss[], graphOutputs: Set<string>, shape: (t: string) => Dim[] | undefined, names: NameSource): MaskedRows {
  const result: MaskedRows = { nodes, labels: new Map(), shapes: new Map() };
  const records = readHeadRecords(model).filter((r) => r.kind === 'mlm');
  for (const loss of losses) {
    const rec = records.find((r) => r.output === loss.output);
    if (!rec || loss.kind !== 'ce') continue;
    const d = shape(rec.from)?.[2];
    const vocab = shape(loss.output)?.slice(-1)[0];
    if (typeof d !== 'number') continue; // no static width: plain CE over the full logits (same result)
    const producer = producers(result.nodes);
    const shared = new Set<NodeProto>();
    for (const o of graphOutputs) if (o !== loss.output) for (const n of ancestors(o, producer)) shared.add(n);
    const own = [...ancestors(loss.output, producer)].filter((n) => !shared.has(n));
    const readers = own.filter((n) => (n.input ?? []).includes(rec.from));
    if (!readers.length) continue;

    const emit = new Emitter(names, `mlm.${loss.head}`);
    const flat = emit.reshape(rec.from, emit.int64s([-1, d], 'rows_shape'), 'hidden_rows');
    const labels = emit.reshape(loss.labelInput, emit.int64s([-1], 'flat'), 'labels_flat');
    const keep = emit.op('Not', [emit.op('Equal', [labels, emit.int64s([IGNORE_INDEX], 'ignore_index')], undefined, 'ignored')], undefined, 'masked');
    const idx = emit.reshape(emit.op('NonZero', [keep], undefined, 'masked_2d'), emit.int64s([-1], 'flat'), 'masked_index');
    const rows = emit.op('Gather', [flat, idx], { axis: A.int(0) }, 'masked_rows');
    const picked = emit.op('Gather', [labels, idx], { axis: A.int(0) }, 'masked_labels');
    // The emitter's constants become Constant nodes, so the forward graph stays self-contained.
    const consts: NodeProto[] = emit.initializers.map((t) => ({ name: names.uniqueName(`${t.name}/Constant`), op_type: 'Constant', input: [], output: [t.name ?? ''], attribute: makeAttrs({ value: A.tensor({ ...t, name: undefined }) }) }));
    const readerSet = new Set(readers);
    const first = Math.min(...readers.map((n) => result.nodes.indexOf(n)));
    const rewired = result.nodes.map((n) => (readerSet.has(n) ? { ...n, input: (n.input ?? []).map((i) => (i === rec.from ? rows : i)) } : n));
    result.nodes = [...rewired.slice(0, first), ...consts, ...emit.nodes, ...rewired.slice(first)];
    result.labels.set(loss.head, picked);
    result.shapes.set(loss.head, ['masked', typeof vocab === 'number' ? vocab : null]);
  }
  return result;
}
