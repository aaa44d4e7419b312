// patch: head detection/resolution and GRL splicing, on the committed fixtures
// (bit-identical ORT outputs) and on hand-built models for the edge cases.
import * as path from 'path';
import { loadModel, serializeModel, Model } from '../src/onnx/io';
import { Graph } from '../src/onnx/graph';
import { AttrType, toNumber } from '../src/onnx/proto';
import { attrFloat, attrString } from '../src/onnx/attrs';
import { GrlError } from '../src/onnx/errors';
import { detectHeads, resolveHead, isGrlNode } from '../src/patch/heads';
import { patchModel } from '../src/patch/patch';
import { GRL_DOMAIN, GRL_OP } from '../src/patch/grl';
import { expectSameOutputs, feedsFor, fixturePaths, modelFromProto, multiHeadModel, runOrt, singleHeadModel } from './helpers/models';

const grls = (m: Model) => (m.proto.graph?.node ?? []).filter(isGrlNode);

/** Every structural promise of a patched model. */
function expectWellFormedGrls(m: Model, expected: { head: string; lambda: number; input: string }[]): void {
  const nodes = grls(m);
  expect(nodes.map((n) => ({ head: attrString(n, 'head'), lambda: attrFloat(n, 'lambda'), input: n.input?.[0] })).sort((a, b) => a.head!.localeCompare(b.head!)))
    .toEqual(expected.map((e) => ({ ...e, lambda: Math.fround(e.lambda) })).sort((a, b) => a.head.localeCompare(b.head)));
  for (const n of nodes) {
    expect(n.name).toBe(`${attrString(n, 'head')}/grl`);
    expect(n.attribute?.find((a) => a.name === 'lambda')?.type).toBe(AttrType.FLOAT);
  }
  const fns = (m.proto.functions ?? []).filter((f) => f.name === GRL_OP && f.domain === GRL_DOMAIN);
  expect(fns).toHaveLength(1);
  expect(fns[0].node?.map((n) => n.op_type)).toEqual(['Identity']);
  expect((m.proto.opset_import ?? []).filter((o) => o.domain === GRL_DOMAIN).map((o) => toNumber(o.version))).toEqual([1]);
  expect(toNumber(m.proto.ir_version)).toBeGreaterThanOrEqual(8);
  new Graph(m.proto.graph ?? {}).validate();
}

describe('head detection on the fixtures', () => {
  const expected: Record<string, { name: string; output: string; splice: string }[]> = {
    'classifier.onnx': [
      { name: 'cls', output: 'cls_logits', splice: '/encoder/layer.1/ffn_norm/LayerNormalization_output_0' },
      { name: 'tag', output: 'tag_logits', splice: '/encoder/layer.1/ffn_norm/LayerNormalization_output_0' },
    ],
    'decoder.onnx': [
      { name: 'pos', output: 'pos_logits', splice: '/final_norm/Add_1_output_0' },
      { name: 'lm', output: 'lm_logits', splice: '/final_norm/Add_1_output_0' },
    ],
    'tagger-opset14.onnx': [
      { name: 'pos', output: 'pos_logits', splice: '/encoder/layer.1/ffn_norm/Add_1_output_0' },
      { name: 'ner', output: 'ner_logits', splice: '/encoder/layer.1/ffn_norm/Add_1_output_0' },
    ],
    'tagger-opset17.onnx': [
      { name: 'pos', output: 'pos_logits', splice: '/encoder/layer.1/ffn_norm/LayerNormalization_output_0' },
      { name: 'ner', output: 'ner_logits', splice: '/encoder/layer.1/ffn_norm/LayerNormalization_output_0' },
    ],
  };
  it.each(Object.keys(expected))('%s: heads and splice points', (file) => {
    const heads = detectHeads(loadModel(path.join(__dirname, '..', 'models', file)));
    expect(heads.map((h) => ({ name: h.name, output: h.output, splice: h.spliceTensor }))).toEqual(expected[file]);
    for (const h of heads) expect(h.exclusiveNodes).toBeGreaterThan(0);
  });

  it('puts the tanh pooler of a sequence head on the adversary side (GRL before the pooler)', () => {
    const m = loadModel(path.join(__dirname, '..', 'models', 'classifier.onnx'));
    const { model } = patchModel(m, { heads: [{ name: 'cls' }] });
    const g = new Graph(model.proto.graph ?? {});
    const grl = grls(model)[0];
    const downstream = g.consumersOf(grl.output![0]).map((n) => n.op_type);
    expect(downstream).not.toContain('Tanh');
    const ops = [...g.ancestors('cls_logits')].filter((n) => !g.ancestors(grl.input![0]).has(n)).map((n) => n.op_type);
    expect(ops).toEqual(expect.arrayContaining(['Gemm', 'Tanh', GRL_OP]));
  });
});

describe('every head of every fixture patches with bit-identical ORT outputs', () => {
  const cases = fixturePaths().flatMap((f) => detectHeads(loadModel(f)).map((h) => [path.basename(f), h.name, f] as const));
  it.each(cases)('%s head %s', async (_file, head, file) => {
    const m = loadModel(file);
    const before = serializeModel(m);
    const info = resolveHead(m, head);
    const { model, heads, warnings } = patchModel(m, { heads: [{ name: head, lambda: 0.5 }] });
    expect(warnings).toEqual([]);
    expect(heads).toEqual([expect.objectContaining({ head, output: info.output, action: 'added', lambda: 0.5, spliceTensor: info.spliceTensor, grlNode: `${head}/grl` })]);
    expectWellFormedGrls(model, [{ head, lambda: 0.5, input: info.spliceTensor }]);
    expect(Buffer.compare(serializeModel(m), before)).toBe(0); // the input model is untouched
    const feeds = feedsFor(m.proto);
    const patched = serializeModel(model);
    for (const level of ['disabled', 'all'] as const) expectSameOutputs(await runOrt(patched, feeds, level), await runOrt(before, feeds, level));
    // Only this head's edges were rewired: the other heads still read the trunk tensor directly.
    const g = new Graph(model.proto.graph ?? {});
    const readers = g.consumersOf(info.spliceTensor).filter((n) => !isGrlNode(n));
    for (const n of readers) expect(g.ancestors(info.output).has(n)).toBe(false);
  });

  it.each(fixturePaths().map((f) => [path.basename(f), f]))('%s: all heads at once, different λ', async (_f, file) => {
    const m = loadModel(file);
    const heads = detectHeads(m);
    const { model } = patchModel(m, { heads: heads.map((h, i) => ({ name: h.name, lambda: i + 0.25 })) });
    expectWellFormedGrls(model, heads.map((h, i) => ({ head: h.name, lambda: i + 0.25, input: h.spliceTensor })));
    const feeds = feedsFor(m.proto, 3, 7, 11);
    expectSameOutputs(await runOrt(serializeModel(model), feeds), await runOrt(serializeModel(m), feeds));
    // Re-detecting on the patched model finds the same heads, with their GRLs.
    expect(detectHeads(model).map((h) => [h.name, h.spliceTensor, h.exclusiveNodes, h.grl?.lambda])).toEqual(heads.map((h, i) => [h.name, h.spliceTensor, h.exclusiveNodes, i + 0.25]));
  });
});

describe('idempotency and --remove', () => {
  const file = path.join(__dirname, '..', 'models', 'tagger-opset14.onnx');

  it('re-patching with the same λ changes nothing; a new λ updates the one GRL', () => {
    const m = loadModel(file);
    const once = patchModel(m, { heads: [{ name: 'pos', lambda: 0.5 }] }).model;
    const twice = patchModel(once, { heads: [{ name: 'pos', lambda: 0.5 }] });
    expect(twice.heads[0].action).toBe('unchanged');
    expect(Buffer.compare(serializeModel(twice.model), serializeModel(once))).toBe(0);
    const updated = patchModel(twice.model, { heads: [{ name: 'pos', lambda: 2 }] });
    expect(updated.heads[0].action).toBe('updated');
    expectWellFormedGrls(updated.model, [{ head: 'pos', lambda: 2, input: '/encoder/layer.1/ffn_norm/Add_1_output_0' }]);
    // Same bytes as patching the original with λ=2 directly.
    expect(Buffer.compare(serializeModel(updated.model), serializeModel(patchModel(m, { heads: [{ name: 'pos', lambda: 2 }] }).model))).toBe(0);
  });

  it('re-patching through a saved file (decoded attributes) still never stacks', () => {
    const once = patchModel(loadModel(file), { heads: [{ name: 'pos', lambda: 0.3 }, { name: 'ner' }] }).model;
    const reloaded = loadModel(serializeModel(once));
    const again = patchModel(reloaded, { heads: [{ name: 'pos', lambda: 0.3 }, { name: 'ner', lambda: 1 }] });
    expect(again.heads.map((h) => h.action)).toEqual(['unchanged', 'unchanged']);
    expect(grls(again.model)).toHaveLength(2);
  });

  it('--remove of all GRLs gives back the original model, byte for byte, and the IR version it had', () => {
    const m = loadModel(file);
    expect(toNumber(m.proto.ir_version)).toBe(7);
    const patched = patchModel(m, { heads: [{ name: 'pos' }, { name: 'ner', lambda: 0.1 }] }).model;
    expect(toNumber(patched.proto.ir_version)).toBe(8);
    const removed = patchModel(loadModel(serializeModel(patched)), { remove: true });
    expect(removed.heads.map((h) => [h.head, h.action])).toEqual([['pos', 'removed'], ['ner', 'removed']]);
    expect(Buffer.compare(serializeModel(removed.model), serializeModel(m))).toBe(0);
  });

  it('--remove of one named head keeps the other GRL and the function', () => {
    const patched = patchModel(loadModel(file), { heads: [{ name: 'pos' }, { name: 'ner', lambda: 0.1 }] }).model;
    const r = patchModel(patched, { remove: true, heads: [{ name: 'ner' }] });
    expectWellFormedGrls(r.model, [{ head: 'pos', lambda: 1, input: '/encoder/layer.1/ffn_norm/Add_1_output_0' }]);
    const none = patchModel(r.model, { remove: true, heads: [{ name: 'ner' }] });
    expect(none.warnings).toEqual(["head 'ner' has no GRL; nothing to remove"]);
  });
});

describe('--at', () => {
  const file = path.join(__dirname, '..', 'models', 'tagger-opset14.onnx');

  it('splices inside the head branch, and moving it never stacks', async () => {
    const m = loadModel(file);
    const g = new Graph(m.proto.graph ?? {});
    // The first node of the pos head reads the trunk; its output is inside the branch.
    const first = g.consumersOf('/encoder/layer.1/ffn_norm/Add_1_output_0').find((n) => g.ancestors('pos_logits').has(n) && !g.ancestors('ner_logits').has(n))!;
    const inside = first.output![0];
    const r = patchModel(m, { heads: [{ name: 'pos', lambda: 0.7 }], at: inside });
    expectWellFormedGrls(r.model, [{ head: 'pos', lambda: 0.7, input: inside }]);
    const feeds = feedsFor(m.proto);
    expectSameOutputs(await runOrt(serializeModel(r.model), feeds), await runOrt(serializeModel(m), feeds));
    const moved = patchModel(r.model, { heads: [{ name: 'pos', lambda: 0.7 }] });
    expect(moved.heads[0].action).toBe('moved');
    expectWellFormedGrls(moved.model, [{ head: 'pos', lambda: 0.7, input: '/encoder/layer.1/ffn_norm/Add_1_output_0' }]);
  });

  it('rejects a trunk tensor whose consumers feed the other head too', () => {
    expect(() => patchModel(loadModel(file), { heads: [{ name: 'pos' }], at: '/encoder/layer.0/ffn_norm/Add_1_output_0' }))
      .toThrow(/head 'pos': tensor '\/encoder\/layer.0\/ffn_norm\/Add_1_output_0' is in the shared trunk \(its consumers also feed 'ner_logits'\)/);
  });

  it('rejects a tensor that is not upstream of the head, an unknown tensor and a weight', () => {
    const m = loadModel(file);
    const g = new Graph(m.proto.graph ?? {});
    const nerNode = [...g.ancestors('ner_logits')].find((n) => !g.ancestors('pos_logits').has(n))!;
    expect(() => patchModel(m, { heads: [{ name: 'pos' }], at: nerNode.output![0] })).toThrow(new RegExp(`tensor '${nerNode.output![0]}' is not upstream of output 'pos_logits'`));
    expect(() => patchModel(m, { heads: [{ name: 'pos' }], at: 'no/such/tensor' })).toThrow(/no tensor 'no\/such\/tensor' in the graph/);
    const weight = m.proto.graph!.initializer![0].name!;
    expect(() => patchModel(m, { heads: [{ name: 'pos' }], at: weight })).toThrow(/is an initializer \(a weight\)/);
    expect(() => patchModel(m, { heads: [{ name: 'pos' }, { name: 'ner' }], at: nerNode.output![0] })).toThrow(/--at applies to one head/);
  });

  it('on a tensor also read by another head, splices only the chosen head\'s edge', () => {
    const m = modelFromProto(multiHeadModel());
    const h = '/encoder/layer.1/norm/Mul_output_0';
    const r = patchModel(m, { heads: [{ name: 'ner' }], at: h });
    const g = new Graph(r.model.proto.graph ?? {});
    expect(g.consumersOf(h).map((n) => n.name).sort()).toEqual(['/Shape', '/cls/Gather', '/heads.pos/MatMul', 'ner/grl']);
    expect(g.producer('logits_ner')?.input?.[0]).toBe(`${h}/grl/ner`);
  });
});

describe('head names and edge cases on built models', () => {
  const m = modelFromProto(multiHeadModel(), 'multi.onnx');

  it('detects heads, ignores the shape output, and skips shared shape tensors', () => {
    const heads = detectHeads(m);
    expect(heads.map((h) => [h.name, h.output, h.exclusiveNodes, h.spliceTensor, h.otherTrunkInputs])).toEqual([
      ['pos', 'pos_logits', 3, '/encoder/layer.1/norm/Mul_output_0', []],
      ['ner', 'logits_ner', 1, '/encoder/layer.1/norm/Mul_output_0', []],
      ['sentiment', 'sentiment', 5, '/encoder/layer.1/norm/Mul_output_0', []],
    ]);
  });

  it.each([
    ['pos', 'pos_logits'], ['pos_logits', 'pos_logits'], ['ner', 'logits_ner'], ['logits_ner', 'logits_ner'],
    ['cls', 'sentiment'], ['heads.pos', 'pos_logits'], ['sentiment', 'sentiment'],
  ])('resolves %s to output %s', (name, output) => {
    expect(resolveHead(m, name).output).toBe(output);
  });

  it('lists available heads for an unknown name, and explains non-heads', () => {
    expect(() => resolveHead(m, 'nope')).toThrow(new GrlError("multi.onnx: no head 'nope'; available heads: pos (pos_logits), ner (logits_ner), sentiment"));
    expect(() => resolveHead(m, 'hidden_shape')).toThrow(/output 'hidden_shape' is not a head/);
  });

  it('lists the candidates of an ambiguous name', () => {
    const p = multiHeadModel();
    const g = p.graph!;
    // A second output whose stripped name is also `pos`.
    g.node!.push({ name: '/extra/Identity', op_type: 'Identity', input: ['/heads.pos/Add_output_0'], output: ['logits_pos'] });
    g.output!.push({ ...g.output![0], name: 'logits_pos' });
    const amb = modelFromProto(p, 'amb.onnx');
    expect(() => resolveHead(amb, 'pos')).toThrow("amb.onnx: head 'pos' is ambiguous: it matches outputs 'pos_logits', 'logits_pos'; name the output instead");
    expect(resolveHead(amb, 'logits_pos').output).toBe('logits_pos');
  });

  it('single-output model: splices at the input of the final projection', async () => {
    const s = modelFromProto(singleHeadModel());
    const [head] = detectHeads(s);
    expect([head.name, head.output, head.spliceTensor, head.exclusiveNodes]).toEqual(['logits', 'logits', 'c', 5]);
    const { model } = patchModel(s, { heads: [{ name: 'logits' }] });
    expectWellFormedGrls(model, [{ head: 'logits', lambda: 1, input: 'c' }]);
    expect(model.proto.graph!.node!.map((n) => n.name)).toEqual(['/body/MatMul', '/body/Add', '/body/Relu', 'logits/grl', '/classifier/MatMul', '/classifier/Add']);
    expect(detectHeads(model)[0].spliceTensor).toBe('c');
    const feeds = feedsFor(s.proto);
    expectSameOutputs(await runOrt(serializeModel(model), feeds), await runOrt(serializeModel(s), feeds));
  });

  it('λ must be finite; a negative λ is allowed with a warning', () => {
    expect(() => patchModel(m, { heads: [{ name: 'pos', lambda: Infinity }] })).toThrow("multi.onnx: λ for head 'pos' must be a finite number, got Infinity");
    expect(() => patchModel(m, { heads: [{ name: 'pos' }], lambda: NaN })).toThrow(/must be a finite number, got NaN/);
    const r = patchModel(m, { heads: [{ name: 'pos' }], lambda: -0.5 });
    expect(r.warnings).toEqual(["head 'pos': λ=-0.5 is negative, so the trunk gets this head's ordinary (not reversed) gradient"]);
    expect(attrFloat(grls(r.model)[0], 'lambda')).toBe(-0.5);
  });

  it('needs a head unless removing', () => {
    expect(() => patchModel(m, {})).toThrow('multi.onnx: name at least one head to patch');
  });
});
