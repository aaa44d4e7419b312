// buildTrainingGraph pinned byte for byte on a small hand-built model: an embedding
// lookup (80 rows: past the one-hot path, so row-sparse), a shared encoder, a token-level main head and a
// GRL-patched adversary. Refactors of the builder must not change a single byte of
// the training or eval graph, nor the names it reports. Weights are exact binary
// fractions and no transcendental function is involved, so the bytes are the same on
// every platform. When a change to the produced graphs is intended, update the hashes
// and say in the commit what changed in the graphs.
import * as crypto from 'crypto';
import { Model, serializeModel } from '../../src/onnx/io';
import { float32Tensor } from '../../src/onnx/tensor';
import { patchModel } from '../../src/patch/patch';
import { buildTrainingGraph } from '../../src/grad/training';
import { F, I64, makeModel, twoHeadNodes, valueInfo } from '../helpers/build';

function pinnedModel(): Model {
  const init = (name: string, dims: number[], salt: number) =>
    float32Tensor(name, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => (((k * 37 + salt) % 17) - 8) / 16));
  const proto = makeModel({
    opset: 14,
    nodes: [{ name: '/emb/Gather', op_type: 'Gather', input: ['E', 'ids'], output: ['x'] }, ...twoHeadNodes()],
    inputs: [valueInfo('ids', I64, ['batch', 'seq'])],
    outputs: [valueInfo('main_logits', F, ['batch', 'seq', 3]), valueInfo('adv_logits', F, ['batch', 'seq', 2])],
    initializers: [init('E', [80, 4], 1), init('We', [4, 5], 2), init('be', [5], 3), init('Wm', [5, 3], 4), init('bm', [3], 5), init('Wa', [5, 2], 6), init('ba', [2], 7)],
  });
  return patchModel({ proto, source: 'pinned', unknownFields: [] }, { heads: [{ name: 'adv', lambda: 0.5 }] }).model;
}

const sha = (b: Uint8Array | string) => crypto.createHash('sha256').update(b).digest('hex').slice(0, 16);

describe('buildTrainingGraph bytes', () => {
  it('are the pinned ones for a two-head GRL model with a row-sparse embedding', () => {
    const tg = buildTrainingGraph(pinnedModel(), { losses: [{ head: 'main' }, { head: 'adv', weight: 0.25 }], rowSparseGradients: true, includeLogits: true });
    const { training, eval: evalModel, ...meta } = tg;
    expect(tg.outputs.rowGrads).toEqual({ E: { rows: 'E_grad_rows', indices: 'E_grad_indices' } });
    expect({ training: sha(serializeModel(training)), eval: sha(serializeModel(evalModel)), meta: sha(JSON.stringify(meta)) }).toEqual({
      training: '2afea539a8222e00',
      eval: '6b25838aec4f3c0a',
      meta: 'd73de89ce3757b60',
    });
  });
});
