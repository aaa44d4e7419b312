// Heads: the BERT-style masked-LM head (transformers' BertLMPredictionHead):
// dense d→d, GELU, LayerNorm (eps 1e-12), then a decoder to the vocabulary plus
// a bias. Tied (the default, as in BERT), the decoder is the word-embedding
// table itself, read through a Transpose, so training sums the gradients of
// its two uses; untied, it is a copy of the table (`heads.mlm.decoder.weight`).
import { Graph } from '../onnx/graph';
import { GrlError } from '../onnx/errors';
import { tensorToFloat32 } from '../onnx/tensor';
import { A } from '../onnx/attrs';
import type { Rng } from '../data/jsonl';
import type { HeadEmitter } from './build';
import { findWordEmbedding } from './encoder';
import type { HeadRecord } from './metadata';

export interface MlmHeadOptions {
  name: string;
  output: string;
  from: string;
  d: number;
  tie: boolean;
  rng: Rng;
  source: string;
  baseDir?: string;
}

export function buildMlmHead(emit: HeadEmitter, graph: Graph, o: MlmHeadOptions): HeadRecord {
  const emb = findWordEmbedding(graph);
  if (!emb) throw new GrlError(`${o.source}: --mlm needs the word-embedding table (an initializer [vocab, d] gathered by input_ids); none found`, { file: o.source });
  if (emb.d !== o.d) throw new GrlError(`${o.source}: --from '${o.from}' has width ${o.d} but the word embeddings have ${emb.d}; the MLM decoder needs them equal`, { file: o.source });
  const d = o.d;
  let x = emit.gelu(emit.linear(o.from, 'transform.dense.', d, d, o.rng), 'transform/');
  const gamma = emit.param('transform.LayerNorm.weight', [d], new Float32Array(d).fill(1));
  const beta = emit.param('transform.LayerNorm.bias', [d], new Float32Array(d));
  x = emit.layerNorm(x, 'transform/LayerNorm/', gamma, beta, 1e-12);
  let decoder: string;
  if (o.tie) {
    decoder = emit.node('Transpose', 'decoder/Transpose', [emb.table], { perm: A.ints([1, 0]) });
  } else {
    const table = tensorToFloat32(graph.initializer(emb.table)!, o.baseDir);
    const t = new Float32Array(d * emb.vocab);
    for (let v = 0; v < emb.vocab; v++) for (let k = 0; k < d; k++) t[k * emb.vocab + v] = table[v * d + k];
    decoder = emit.param('decoder.weight', [d, emb.vocab], t);
  }
  const bias = emit.param('bias', [emb.vocab], new Float32Array(emb.vocab));
  emit.node('Add', 'decoder/Add', [emit.node('MatMul', 'decoder/MatMul', [x, decoder]), bias], {}, o.output);
  return { name: o.name, output: o.output, kind: 'mlm', from: o.from, classes: emb.vocab, tied: o.tie };
}
