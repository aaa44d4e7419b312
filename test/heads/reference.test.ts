// Heads added by `heads add` train like the same heads built in PyTorch
// (test/fixtures/heads-mini.ref.json, made by scripts/make-heads-references.sh):
// a token head with a GRL (λ 0.3), a mean-pooled sequence head with an MLP and a
// CLS-pooled sequence head on the mini BertModel. The heads are rebuilt here with
// the same calls and seed, so a change in initialisation fails this test too.
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel, Model } from '../../src/onnx/io';
import { addHeads } from '../../src/heads/add';
import { patchModel } from '../../src/patch/patch';
import { buildTrainingGraph } from '../../src/grad/training';
import { MINI } from './helpers';
import { batchFeeds, gradientMismatches, i64, loadRef, paramFeeds, runGraph, sgdStepDelta, Feeds } from './refs';

/** The recipe of scripts/make-heads-references.sh, through the API. */
function headsModel(): Model {
  const mini = loadModel(MINI);
  const a = addHeads(mini, [{ name: 'pos', classes: 5, adversarial: 0.3 }], { seed: 11 }).model;
  const b = addHeads(a, [{ name: 'sent', classes: 3, kind: 'seq', pool: 'mean', mlp: 8 }], { seed: 11 }).model;
  return addHeads(b, [{ name: 'topic', classes: 4, kind: 'seq', pool: 'cls' }], { seed: 11 }).model;
}

const ref = loadRef('heads-mini');
const adversarial = headsModel();
const plain = patchModel(adversarial, { remove: true }).model;
const losses = ref.heads.map((h) => ({ head: h.head, weight: h.weight }));

describe('heads add against PyTorch (mini BertModel, 3 heads)', () => {
  it('forward: the head logits equal torch with the weights read from the ONNX file', async () => {
    const s = await ort.InferenceSession.create(serializeModel(plain));
    const feeds: Feeds = {};
    for (const [name, x] of Object.entries(ref.inputs)) feeds[name] = i64(x);
    const out = await s.run(feeds);
    await s.release();
    for (const name of ['last_hidden_state', 'pos_logits', 'sent_logits', 'topic_logits']) {
      const want = ref.outputs[name];
      expect(out[name].dims).toEqual(want.dims);
      const got = out[name].data as Float32Array;
      let worst = 0;
      for (let k = 0; k < want.data.length; k++) worst = Math.max(worst, Math.abs(got[k] - want.data[k]));
      expect(worst).toBeLessThan(1e-5);
    }
  });

  describe.each([['plain'], ['grl']] as const)('%s case', (which) => {
    const c = ref.cases[which];
    const model = which === 'grl' ? adversarial : plain;

    it('every parameter gradient and the losses', async () => {
      const tg = buildTrainingGraph(model, { losses });
      expect(tg.params.filter((p) => p.trainable).map((p) => p.name).sort()).toEqual(Object.keys(c.gradients).sort());
      expect(tg.lambdas.map((l) => [l.head, l.default])).toEqual(which === 'grl' ? [['pos', Math.fround(0.3)]] : []);
      const feeds = { ...batchFeeds(ref, tg), ...paramFeeds(model, tg) };
      for (const l of tg.lambdas) feeds[l.input] = new ort.Tensor('float32', Float32Array.of(l.default), []);
      const out = await runGraph(tg, feeds);
      expect((out[tg.outputs.loss].data as Float32Array)[0]).toBeCloseTo(c.total_loss, 5);
      for (const h of tg.heads) expect((out[tg.outputs.headLoss[h.head]].data as Float32Array)[0]).toBeCloseTo(c.losses[h.output], 5);
      const got = new Map(Object.entries(tg.outputs.grads).map(([p, g]) => [p, out[g].data as Float32Array]));
      expect(gradientMismatches(c, got)).toEqual([]);
    });
  });

  it('one SGD step (lr 1) through TrainingSession is θ − ∇θ of the GRL reference', async () => {
    const { loss, delta } = await sgdStepDelta(adversarial, losses, ref);
    expect(loss).toBeCloseTo(ref.cases.grl.total_loss, 5);
    expect([...delta.keys()].sort()).toEqual(Object.keys(ref.cases.grl.gradients).sort());
    expect(gradientMismatches(ref.cases.grl, delta)).toEqual([]);
  });
});
