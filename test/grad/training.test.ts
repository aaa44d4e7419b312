// buildTrainingGraph on a small hand-built two-head model: the GRL semantics
// (the encoder gets grad(loss_main) − λ·w·grad(loss_adv), the adversary its
// ordinary gradient, λ fed at run time), freeze/trainable patterns, the
// default-domain-only training and eval graphs, and the refusals.
import * as ort from 'onnxruntime-node';
import { Model, serializeModel } from '../../src/onnx/io';
import { ModelProto } from '../../src/onnx/proto';
import { float32Tensor, tensorToFloat32 } from '../../src/onnx/tensor';
import { GrlError } from '../../src/onnx/errors';
import { patchModel } from '../../src/patch/patch';
import { GRL_DOMAIN } from '../../src/patch/grl';
import { buildTrainingGraph, TrainingGraph } from '../../src/grad/training';
import { F, makeModel, randn, rng, twoHeadNodes, valueInfo } from '../helpers/build';

const rand = rng(11);
const B = 5;

function twoHeadModel(opset = 14): Model {
  const init = (name: string, dims: number[]) => float32Tensor(name, dims, randn(rand, dims.reduce((a, b) => a * b, 1), 0.8));
  const proto = makeModel({
    opset,
    nodes: twoHeadNodes(),
    inputs: [valueInfo('x', F, ['batch', 4])],
    outputs: [valueInfo('main_logits', F, ['batch', 2]), valueInfo('adv_logits', F, ['batch', 3])],
    initializers: [init('We', [4, 3]), init('be', [3]), init('Wm', [3, 2]), init('bm', [2]), init('Wa', [3, 3]), init('ba', [3])],
  });
  return { proto, source: 'two-head', unknownFields: [] };
}

const x = randn(rand, B * 4);
const labels = { main: [0, 1, 1, -100, 0], adv: [2, 0, -100, 1, 1] };

async function run(model: Model, tg: TrainingGraph, which: 'training' | 'eval', lambda?: number) {
  const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [B, 4]) };
  for (const h of tg.heads) feeds[h.labelInput] = new ort.Tensor('int64', BigInt64Array.from(labels[h.head as 'main' | 'adv'], BigInt), [B]);
  for (const l of tg.lambdas) feeds[l.input] = new ort.Tensor('float32', Float32Array.of(lambda ?? l.default), []);
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name, t]));
  for (const p of tg.params) if (p.trainable) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(inits.get(p.name)!), p.dims);
  const s = await ort.InferenceSession.create(serializeModel(tg[which]));
  const out = await s.run(feeds);
  await s.release();
  const grad = (p: string) => Array.from(out[tg.outputs.grads[p]].data as Float32Array);
  return { out, grad, loss: (out[tg.outputs.loss].data as Float32Array)[0] };
}

function expectClose(a: number[], b: number[]) {
  expect(a.length).toBe(b.length);
  const scale = Math.max(...b.map(Math.abs), 1e-6);
  a.forEach((v, k) => expect(Math.abs(v - b[k])).toBeLessThan(1e-5 * scale + 1e-7));
}

function defaultDomainOnly(m: ModelProto) {
  for (const n of m.graph!.node!) expect([n.domain ?? '', n.op_type]).toEqual(['', n.op_type]);
  expect(m.opset_import!.map((o) => o.domain ?? '')).not.toContain(GRL_DOMAIN);
  expect((m.functions ?? []).map((f) => f.domain)).not.toContain(GRL_DOMAIN);
}

describe('buildTrainingGraph with a gradient-reversal head', () => {
  const model = twoHeadModel();
  const patched = patchModel(model, { heads: [{ name: 'adv', lambda: 0.7 }] }).model;
  const both = buildTrainingGraph(patched, { losses: [{ head: 'main' }, { head: 'adv', weight: 0.5 }] });
  const mainOnly = buildTrainingGraph(model, { losses: [{ head: 'main' }] });
  const advOnly = buildTrainingGraph(model, { losses: [{ head: 'adv' }] });

  it('describes inputs, λ, heads and outputs', () => {
    expect(both.modelInputs).toEqual(['x']);
    expect(both.lambdas).toEqual([{ head: 'adv', input: 'grl.adv.lambda', node: expect.any(String), default: expect.closeTo(0.7, 6) }]);
    expect(both.heads).toEqual([
      { head: 'main', labelInput: 'main', output: 'main_logits', kind: 'ce', weight: 1, tokenLevel: false, numClasses: 2 },
      { head: 'adv', labelInput: 'adv', output: 'adv_logits', kind: 'ce', weight: 0.5, tokenLevel: false, numClasses: 3 },
    ]);
    expect(both.params.map((p) => [p.name, p.trainable])).toEqual([['We', true], ['be', true], ['Wm', true], ['bm', true], ['Wa', true], ['ba', true]]);
    const g = both.training.graph!;
    expect(g.input!.map((i) => i.name)).toEqual(['x', 'main', 'adv', 'grl.adv.lambda', 'We', 'be', 'Wm', 'bm', 'Wa', 'ba']);
    expect(g.output!.map((o) => o.name)).toEqual(['loss', 'loss.main', 'loss.adv', 'correct.main', 'count.main', 'correct.adv', 'count.adv', 'We_grad', 'be_grad', 'Wm_grad', 'bm_grad', 'Wa_grad', 'ba_grad']);
    expect(both.outputs.grads).toEqual({ We: 'We_grad', be: 'be_grad', Wm: 'Wm_grad', bm: 'bm_grad', Wa: 'Wa_grad', ba: 'ba_grad' });
  });

  it('uses only default-domain ops at opset 16 or newer, with no GRL function left', () => {
    for (const m of [both.training, both.eval]) {
      defaultDomainOnly(m);
      expect(m.opset_import!.find((o) => !o.domain)!.version).toBe(16);
    }
    expect(both.eval.graph!.output!.map((o) => o.name)).toEqual(['loss', 'loss.main', 'loss.adv', 'correct.main', 'count.main', 'correct.adv', 'count.adv', 'main_logits', 'adv_logits']);
  });

  it('reverses and scales the adversary gradient into the encoder; heads get their ordinary gradients', async () => {
    const gm = await run(model, mainOnly, 'training');
    const ga = await run(model, advOnly, 'training');
    for (const lambda of [0.7, 0.3]) {
      const gb = await run(patched, both, 'training', lambda);
      expect(gb.loss).toBeCloseTo(gm.loss + 0.5 * ga.loss, 5);
      for (const p of ['We', 'be']) expectClose(gb.grad(p), gm.grad(p).map((v, k) => v - lambda * 0.5 * ga.grad(p)[k]));
      for (const p of ['Wa', 'ba']) expectClose(gb.grad(p), ga.grad(p).map((v) => 0.5 * v));
      for (const p of ['Wm', 'bm']) expectClose(gb.grad(p), gm.grad(p));
    }
    // A sanity check that the reversal matters: the encoder gradients differ from the plain sum.
    const gb = await run(patched, both, 'training', 0.7);
    expect(Math.max(...gb.grad('We').map((v, k) => Math.abs(v - (gm.grad('We')[k] + 0.5 * ga.grad('We')[k]))))).toBeGreaterThan(1e-3);
  });

  it('the eval graph gives the same losses and counts as the training graph', async () => {
    const t = await run(patched, both, 'training');
    const e = await run(patched, both, 'eval');
    expect(e.loss).toBe(t.loss);
    expect(e.out['count.main'].data[0]).toBe(4);
    expect(e.out['count.adv'].data[0]).toBe(4);
    expect(e.out.main_logits.dims).toEqual([B, 2]);
  });
});

describe('buildTrainingGraph with a hand-made GRL node', () => {
  it('names λ after the node when the GRL has no head attribute, and reverses with the fed λ', async () => {
    const model = twoHeadModel();
    const plainModel: Model = { ...model, proto: { ...model.proto, graph: { ...model.proto.graph!, node: [...model.proto.graph!.node!] } } };
    const g = model.proto.graph!;
    g.node = [...g.node!];
    g.node.splice(5, 0, { name: 'my_grl', op_type: 'GradientReversal', domain: GRL_DOMAIN, input: ['h'], output: ['h_rev'], attribute: [{ name: 'lambda', type: 1, f: 2 }] });
    g.node[6] = { ...g.node[6], input: ['h_rev', 'Wa'] };
    model.proto.opset_import = [...model.proto.opset_import!, { domain: GRL_DOMAIN, version: 1 }];
    const tg = buildTrainingGraph(model, { losses: [{ head: 'adv' }] });
    expect(tg.lambdas).toEqual([{ head: 'my_grl', input: 'grl.my_grl.lambda', node: 'my_grl', default: 2 }]);
    defaultDomainOnly(tg.training);
    const plain = buildTrainingGraph(plainModel, { losses: [{ head: 'adv' }] });
    expect(plain.lambdas).toEqual([]);
    const r = await run(model, tg, 'training');
    const p = await run(plainModel, plain, 'training');
    expectClose(r.grad('We'), p.grad('We').map((v) => -2 * v));
    expectClose(r.grad('Wa'), p.grad('Wa'));
  });
});

describe('buildTrainingGraph parameter selection', () => {
  const model = twoHeadModel();

  it('frozen parameters stay initializers (the same objects) and get no _grad', async () => {
    const tg = buildTrainingGraph(model, { losses: [{ head: 'main' }], freeze: ['W*'] });
    expect(tg.params.filter((p) => p.trainable).map((p) => p.name)).toEqual(['be', 'bm']);
    const g = tg.training.graph!;
    expect(g.output!.map((o) => o.name).filter((n) => n!.endsWith('_grad'))).toEqual(['be_grad', 'bm_grad']);
    const inits = new Map(g.initializer!.map((t) => [t.name, t]));
    const orig = new Map(model.proto.graph!.initializer!.map((t) => [t.name, t]));
    expect(inits.get('We')).toBe(orig.get('We'));
    expect(inits.get('Wm')).toBe(orig.get('Wm'));
    expect(inits.has('be')).toBe(false);
    // The adversary head is not a loss here: its parameters are not on a path and not used.
    expect(tg.params.find((p) => p.name === 'Wa')!.trainable).toBe(false);
    expect(inits.has('Wa')).toBe(false);
    const r = await run(model, tg, 'training');
    expect(r.grad('bm').length).toBe(2);
  });

  it('--trainable narrows with a regex; combined with --freeze', () => {
    const tg = buildTrainingGraph(model, { losses: [{ head: 'main' }, { head: 'adv' }], trainable: ['/^[Wb][ma]$/'], freeze: ['?a'] });
    expect(tg.params.filter((p) => p.trainable).map((p) => p.name)).toEqual(['Wm', 'bm']);
  });

  it('refuses a pattern that matches no parameter', () => {
    expect(() => buildTrainingGraph(model, { losses: [{ head: 'main' }], freeze: ['encoder.*'] })).toThrow('--freeze encoder.* matches no parameter');
  });
});

describe('buildTrainingGraph refusals and options', () => {
  it('refuses opsets below 13 with a clear error', () => {
    expect(() => buildTrainingGraph(twoHeadModel(12), { losses: [{ head: 'main' }] })).toThrow(/two-head: opset 12 is too old/);
  });

  it('an unknown head is a GrlError listing the heads', () => {
    let err: unknown;
    try { buildTrainingGraph(twoHeadModel(), { losses: [{ head: 'nope' }] }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GrlError);
    expect((err as Error).message).toMatch(/no head 'nope'.*main.*adv/);
  });

  it('keeps the model opset when it is newer than 16, and outputs logits on request', async () => {
    const model = twoHeadModel(17);
    const tg = buildTrainingGraph(model, { losses: [{ head: 'main_logits', weight: 2 }], includeLogits: true });
    expect(tg.training.opset_import!.find((o) => !o.domain)!.version).toBe(17);
    const r = await run(model, tg, 'training');
    expect(r.out.main_logits.dims).toEqual([B, 2]);
    expect(r.loss).toBeCloseTo(2 * (r.out['loss.main'].data[0] as number), 6);
  });
});
