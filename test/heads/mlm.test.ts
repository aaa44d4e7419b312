// The MLM head (`heads add --mlm`): its forward against the math computed here
// from the stored initializers (tied and untied decoder), its gradients against
// PyTorch with the decoder tied to the word embeddings (test/fixtures/mlm-mini.ref.json:
// the table's gradient sums its two uses), and the training graph's masked-row
// gathering: same loss and gradients as CE over the full logits, while the decoder
// MatMul multiplies [N, d] rows, N = the number of masked positions.
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import { addHeads } from '../../src/heads/add';
import { readHeadRecords } from '../../src/heads/metadata';
import { buildTrainingGraph } from '../../src/grad/training';
import { B, T, ENCODER, MINI, affine, batchFeeds, gelu, init, layerNorm, maxRelError, runFloats } from './helpers';
import { batchFeeds as refFeeds, gradientMismatches, loadRef, paramFeeds, runGraph, sgdStepDelta } from './refs';

const D = 32;

describe('heads add --mlm on the BertModel fixture (vocab 30,522)', () => {
  const encoder = loadModel(ENCODER);
  const V = 30522;
  const feeds = batchFeeds(V);
  const tied = addHeads(encoder, [{ name: 'mlm', kind: 'mlm' }], { seed: 2 }).model;

  it('mlm_logits = LayerNorm(gelu(h W + b)) @ Eᵀ + bias, the encoder outputs unchanged', async () => {
    expect(readHeadRecords(tied)).toEqual([{ name: 'mlm', output: 'mlm_logits', kind: 'mlm', from: 'last_hidden_state', classes: V, tied: true }]);
    const out = await runFloats(tied, feeds);
    const base = await runFloats(ENCODER, feeds);
    expect(Buffer.from(out.last_hidden_state.data.buffer).equals(Buffer.from(base.last_hidden_state.data.buffer))).toBe(true);
    expect(out.mlm_logits.dims).toEqual([B, T, V]);
    const h = out.last_hidden_state.data;
    const x = layerNorm(affine(h, B * T, D, init(tied, 'heads.mlm.transform.dense.weight'), D, init(tied, 'heads.mlm.transform.dense.bias')).map(gelu), B * T, D,
      init(tied, 'heads.mlm.transform.LayerNorm.weight'), init(tied, 'heads.mlm.transform.LayerNorm.bias'), 1e-12);
    const E = init(tied, 'embeddings.word_embeddings.weight');
    const Et = new Float32Array(D * V);
    for (let v = 0; v < V; v++) for (let k = 0; k < D; k++) Et[k * V + v] = E[v * D + k];
    expect(maxRelError(out.mlm_logits.data, affine(x, B * T, D, Et, V, init(tied, 'heads.mlm.bias')))).toBeLessThan(1e-5);
    // The decoder is the table itself: no [d, vocab] copy was added.
    expect(tied.proto.graph?.initializer?.filter((t) => t.name?.startsWith('heads.mlm.')).map((t) => t.name)).toEqual([
      'heads.mlm.transform.dense.weight', 'heads.mlm.transform.dense.bias', 'heads.mlm.transform.LayerNorm.weight', 'heads.mlm.transform.LayerNorm.bias', 'heads.mlm.bias']);
  });

  it('--no-tie-embeddings: a decoder of its own, initialised as a copy of the table (same logits)', async () => {
    const untied = addHeads(encoder, [{ name: 'mlm', kind: 'mlm', tieEmbeddings: false }], { seed: 2 }).model;
    const W = init(untied, 'heads.mlm.decoder.weight');
    const E = init(untied, 'embeddings.word_embeddings.weight');
    expect(W.length).toBe(D * V);
    expect(W[3 * V + 1996]).toBe(E[1996 * D + 3]);
    const a = await runFloats(untied, feeds);
    const b = await runFloats(tied, feeds);
    expect(maxRelError(a.mlm_logits.data, b.mlm_logits.data)).toBeLessThan(1e-6);
    expect(readHeadRecords(untied)[0].tied).toBe(false);
  });

  it('a second MLM head is refused', () => {
    expect(() => addHeads(tied, [{ name: 'mlm', kind: 'mlm' }])).toThrow(`${ENCODER}: head 'mlm' already exists (output 'mlm_logits'); remove it first or pick another name`);
  });
});

describe('MLM head against PyTorch (mini BertModel, decoder tied)', () => {
  const ref = loadRef('mlm-mini');
  const model = addHeads(loadModel(MINI), [{ name: 'mlm', kind: 'mlm' }], { seed: 11 }).model;
  const c = ref.cases.plain;
  const masked = ref.heads[0].labels.data.filter((y) => y !== -100).length;

  async function gradients(gather: boolean) {
    const tg = buildTrainingGraph(model, { losses: [{ head: 'mlm' }], gatherMaskedRows: gather, includeLogits: true });
    const out = await runGraph(tg, { ...refFeeds(ref, tg), ...paramFeeds(model, tg) });
    return { tg, out, grads: new Map(Object.entries(tg.outputs.grads).map(([p, g]) => [p, out[g].data as Float32Array])) };
  }

  it('gathered training graph: loss, count and every gradient (the table\'s from both uses) match torch', async () => {
    expect(masked).toBe(5);
    const { tg, out, grads } = await gradients(true);
    expect((out[tg.outputs.loss].data as Float32Array)[0]).toBeCloseTo(c.total_loss, 5);
    expect((out[tg.outputs.count.mlm].data as Float32Array)[0]).toBe(masked);
    expect([...grads.keys()].sort()).toEqual(Object.keys(c.gradients).sort());
    expect(gradientMismatches(c, grads)).toEqual([]);
    // The head ran on the masked rows only.
    expect(out.mlm_logits.dims).toEqual([masked, 128]);
  });

  it('equals plain CE over the full [B, T, vocab] logits', async () => {
    const g = await gradients(true);
    const f = await gradients(false);
    expect(f.out.mlm_logits.dims).toEqual([3, 7, 128]);
    const lg = (g.out[g.tg.outputs.loss].data as Float32Array)[0];
    const lf = (f.out[f.tg.outputs.loss].data as Float32Array)[0];
    expect(Math.abs(lg - lf)).toBeLessThan(1e-6 * Math.abs(lf));
    expect((g.out[g.tg.outputs.correct.mlm].data as Float32Array)[0]).toBe((f.out[f.tg.outputs.correct.mlm].data as Float32Array)[0]);
    expect([...g.grads.keys()].sort()).toEqual([...f.grads.keys()].sort());
    const worst = Math.max(...[...g.grads].map(([p, a]) => maxRelError(a, f.grads.get(p)!)));
    expect(worst).toBeLessThan(1e-6);
  });

  it('the decoder MatMul multiplies [N, d] rows, not [B·T, d]', async () => {
    const { tg } = await gradients(true);
    const nodes = tg.training.graph?.node ?? [];
    const decoder = nodes.find((n) => n.name === '/heads.mlm/decoder/MatMul');
    expect(decoder).toBeDefined();
    const rowsIn = decoder!.input![0];
    const probe = { ...tg.training, graph: { ...tg.training.graph, output: [...(tg.training.graph?.output ?? []), { name: rowsIn }] } };
    const s = await ort.InferenceSession.create(serializeModel(probe));
    const feeds = { ...refFeeds(ref, tg), ...paramFeeds(model, tg) };
    const out = await s.run(feeds);
    await s.release();
    expect(out[rowsIn].dims).toEqual([masked, D]);
  });

  it('one SGD step (lr 1) through TrainingSession is θ − ∇θ of the reference', async () => {
    const { loss, delta } = await sgdStepDelta(model, [{ head: 'mlm' }], ref);
    expect(loss).toBeCloseTo(c.total_loss, 5);
    expect(gradientMismatches(c, delta)).toEqual([]);
  });
});
