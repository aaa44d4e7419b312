// heads add / remove on the BertModel-style encoder fixtures: the new outputs run
// in ORT and equal the head math computed here from the stored initializers,
// the encoder's outputs stay bit-identical, initialisation is nn.Linear's and
// reproducible, GRLs come and go like `patch`'s, and remove restores the model.
import { loadModel, serializeModel, Model } from '../../src/onnx/io';
import { addHeads, removeHead } from '../../src/heads/add';
import { readHeadRecords } from '../../src/heads/metadata';
import { readLabelNames } from '../../src/heads/labels';
import { patchModel } from '../../src/patch/patch';
import { analyzeHeads, isGrlNode } from '../../src/patch/heads';
import { inspectModel } from '../../src/inspect/inspect';
import { formatInspectReport } from '../../src/inspect/format';
import { B, T, MASK, ENCODER, TOKCLS, affine, batchFeeds, gelu, init, maxRelError, runFloats } from './helpers';

const encoder = loadModel(ENCODER);
const D = 32;
const V = 30522;

describe('inspect on encoder-only exports', () => {
  it('finds no task heads in a BertModel export and lists the hidden states per layer', () => {
    const r = inspectModel(encoder);
    expect(r.heads).toEqual([]);
    expect(r.encoderOutputs).toEqual(['last_hidden_state', 'pooler_output']);
    expect(r.hiddenStates).toEqual([
      { layer: 'embeddings', tensor: '/embeddings/LayerNorm/Add_1_output_0', shape: ['batch', 'sequence', D] },
      { layer: 'encoder/layer.0', tensor: '/encoder/layer.0/output/LayerNorm/Add_1_output_0', shape: ['batch', 'sequence', D] },
      { layer: 'encoder/layer.1', tensor: 'last_hidden_state', shape: ['batch', 'sequence', D] },
    ]);
    const text = formatInspectReport(r);
    expect(text).toContain("    (none: an encoder without task heads; last_hidden_state, pooler_output are the encoder's own outputs; add heads with `grl-onnx heads add`)\n");
    expect(text).toContain('    encoder/layer.0  /encoder/layer.0/output/LayerNorm/Add_1_output_0  [batch, sequence, 32]\n');
  });

  it('finds the added heads (and still not the pooler) once heads are on', () => {
    const { model } = addHeads(encoder, [{ name: 'pos', classes: 17, adversarial: 0.1 }, { name: 'ner', classes: 9 }]);
    const r = inspectModel(model);
    expect(r.heads.map((h) => [h.name, h.output, h.exclusiveNodes, h.spliceTensor])).toEqual([
      ['pos', 'pos_logits', 2, 'last_hidden_state'],
      ['ner', 'ner_logits', 2, 'last_hidden_state'],
    ]);
    expect(r.heads[0].grl).toEqual({ node: 'pos/grl', lambda: Math.fround(0.1), at: 'last_hidden_state' });
    expect(formatInspectReport(r)).toContain("GRL 'pos/grl' λ=0.1\n");
    expect(r.hiddenStates.map((h) => h.tensor)).toEqual(['/embeddings/LayerNorm/Add_1_output_0', '/encoder/layer.0/output/LayerNorm/Add_1_output_0', 'last_hidden_state']);
  });
});

describe('heads add on the BertModel fixture', () => {
  const feeds = batchFeeds(V);
  let base: Awaited<ReturnType<typeof runFloats>>;
  beforeAll(async () => {
    base = await runFloats(ENCODER, feeds);
  });

  it('token heads: old outputs bit-identical, logits = hidden @ W + b, MLP = gelu(h W1 + b1) W2 + b2', async () => {
    const { model, heads } = addHeads(encoder, [{ name: 'pos', classes: 17 }, { name: 'ner', classes: 9, mlp: 16 }], { seed: 5 });
    expect(heads).toEqual([
      { name: 'pos', output: 'pos_logits', kind: 'token', from: 'last_hidden_state', classes: 17 },
      { name: 'ner', output: 'ner_logits', kind: 'token', from: 'last_hidden_state', classes: 9, mlp: 16 },
    ]);
    expect(readHeadRecords(model)).toEqual(heads);
    const out = await runFloats(model, feeds);
    for (const k of ['last_hidden_state', 'pooler_output']) expect(Buffer.from(out[k].data.buffer).equals(Buffer.from(base[k].data.buffer))).toBe(true);
    const h = base.last_hidden_state.data;
    expect(out.pos_logits.dims).toEqual([B, T, 17]);
    const pos = affine(h, B * T, D, init(model, 'heads.pos.weight'), 17, init(model, 'heads.pos.bias'));
    expect(maxRelError(out.pos_logits.data, pos)).toBeLessThan(1e-6);
    const hidden = affine(h, B * T, D, init(model, 'heads.ner.dense.weight'), 16, init(model, 'heads.ner.dense.bias')).map(gelu);
    const ner = affine(hidden, B * T, 16, init(model, 'heads.ner.weight'), 9, init(model, 'heads.ner.bias'));
    expect(out.ner_logits.dims).toEqual([B, T, 9]);
    expect(maxRelError(out.ner_logits.data, ner)).toBeLessThan(1e-6);
    // Below opset 20 the GELU is the erf chain the gradient rules (and the Gelu fusion) know.
    expect(model.proto.graph?.node?.filter((n) => n.name?.startsWith('/heads.ner/')).map((n) => n.op_type)).toEqual(
      ['MatMul', 'Add', 'Constant', 'Div', 'Erf', 'Constant', 'Add', 'Mul', 'Constant', 'Mul', 'MatMul', 'Add']);
  });

  it('sequence heads: cls pooling reads token 0, mean pooling averages over attention_mask == 1', async () => {
    const { model } = addHeads(encoder, [{ name: 'a', classes: 3, kind: 'seq', pool: 'cls' }, { name: 'b', classes: 4, kind: 'seq', pool: 'mean' }]);
    const out = await runFloats(model, feeds);
    const h = base.last_hidden_state.data;
    const first = new Float64Array(B * D);
    const mean = new Float64Array(B * D);
    for (let r = 0; r < B; r++) {
      const n = MASK.slice(r * T, r * T + T).reduce((x, y) => x + y, 0);
      for (let k = 0; k < D; k++) {
        first[r * D + k] = h[r * T * D + k];
        for (let t = 0; t < T; t++) mean[r * D + k] += (MASK[r * T + t] * h[(r * T + t) * D + k]) / n;
      }
    }
    expect(out.a_logits.dims).toEqual([B, 3]);
    expect(maxRelError(out.a_logits.data, affine(first, B, D, init(model, 'heads.a.weight'), 3, init(model, 'heads.a.bias')))).toBeLessThan(1e-6);
    expect(out.b_logits.dims).toEqual([B, 4]);
    expect(maxRelError(out.b_logits.data, affine(mean, B, D, init(model, 'heads.b.weight'), 4, init(model, 'heads.b.bias')))).toBeLessThan(1e-6);
    // The padded positions really are excluded: the unmasked mean differs.
    const plain = new Float64Array(B * D);
    for (let r = 0; r < B; r++) for (let k = 0; k < D; k++) for (let t = 0; t < T; t++) plain[r * D + k] += h[(r * T + t) * D + k] / T;
    expect(maxRelError(out.b_logits.data, affine(plain, B, D, init(model, 'heads.b.weight'), 4, init(model, 'heads.b.bias')))).toBeGreaterThan(1e-3);
  });

  it('--from an intermediate layer', async () => {
    const from = '/encoder/layer.0/output/LayerNorm/Add_1_output_0';
    const { model } = addHeads(encoder, [{ name: 'pos', classes: 5, from }]);
    const probe = { ...model, proto: { ...model.proto, graph: { ...model.proto.graph, output: [...(model.proto.graph?.output ?? []), { name: from }] } } };
    const out = await runFloats(probe, feeds);
    expect(maxRelError(out.pos_logits.data, affine(out[from].data, B * T, D, init(model, 'heads.pos.weight'), 5, init(model, 'heads.pos.bias')))).toBeLessThan(1e-6);
    expect(inspectModel(model).heads[0].spliceTensor).toBe(from);
  });

  it("initialises like nn.Linear: U(±1/√fan_in), seeded, per head independent of the other heads", () => {
    const one = addHeads(encoder, [{ name: 'pos', classes: 17 }], { seed: 3 }).model;
    const two = addHeads(encoder, [{ name: 'ner', classes: 9 }, { name: 'pos', classes: 17 }], { seed: 3 }).model;
    const other = addHeads(encoder, [{ name: 'pos', classes: 17 }], { seed: 4 }).model;
    const w = init(one, 'heads.pos.weight');
    expect(Buffer.from(init(two, 'heads.pos.weight').buffer).equals(Buffer.from(w.buffer))).toBe(true);
    expect(Buffer.from(init(other, 'heads.pos.weight').buffer).equals(Buffer.from(w.buffer))).toBe(false);
    const bound = 1 / Math.sqrt(D);
    for (const t of [w, init(one, 'heads.pos.bias')]) {
      expect(Math.max(...t.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...t.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    }
    // Uniform on [-b, b]: variance b²/3 (544 draws; 15% tolerance).
    const variance = w.reduce((a, x) => a + x * x, 0) / w.length;
    expect(Math.abs(variance / (bound * bound / 3) - 1)).toBeLessThan(0.15);
  });

  it('adversarial: the same GRL node patch adds; patch --remove gives the plain model back', () => {
    const adv = addHeads(encoder, [{ name: 'pos', classes: 17, adversarial: 0.5 }, { name: 'ner', classes: 9 }]).model;
    const plain = addHeads(encoder, [{ name: 'pos', classes: 17 }, { name: 'ner', classes: 9 }]).model;
    const patched = patchModel(plain, { heads: [{ name: 'pos', lambda: 0.5 }] }).model;
    expect(serializeModel(adv).equals(serializeModel(patched))).toBe(true);
    const grls = adv.proto.graph?.node?.filter(isGrlNode) ?? [];
    expect(grls.map((n) => [n.name, n.input, n.output])).toEqual([['pos/grl', ['last_hidden_state'], ['last_hidden_state/grl/pos']]]);
    expect(serializeModel(patchModel(adv, { remove: true }).model).equals(serializeModel(plain))).toBe(true);
  });

  it('remove restores the outputs and drops the head initializers; add then remove gives the original bytes', async () => {
    const both = addHeads(encoder, [{ name: 'pos', classes: 17, adversarial: 0.2, labels: Array.from({ length: 17 }, (_, k) => `T${k}`) }, { name: 'ner', classes: 9 }]).model;
    const r = removeHead(both, 'pos');
    expect(r).toMatchObject({ head: 'pos', output: 'pos_logits', removedNodes: 2, removedInitializers: ['heads.pos.weight', 'heads.pos.bias'] });
    expect(r.model.proto.graph?.output?.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output', 'ner_logits']);
    expect(readHeadRecords(r.model).map((h) => h.name)).toEqual(['ner']);
    expect(readLabelNames(r.model, 'pos')).toBeUndefined();
    expect(serializeModel(r.model).equals(serializeModel(addHeads(encoder, [{ name: 'ner', classes: 9 }]).model))).toBe(true);
    const none = removeHead(r.model, 'ner_logits').model;
    expect(serializeModel(none).equals(serializeModel(encoder))).toBe(true);
    const out = await runFloats(none, feeds);
    expect(Buffer.from(out.last_hidden_state.data.buffer).equals(Buffer.from(base.last_hidden_state.data.buffer))).toBe(true);
  });

  it('stores label names as grl-onnx.id2label.<head>', () => {
    const names = ['NOUN', 'VERB', 'ADJ'];
    const { model } = addHeads(encoder, [{ name: 'pos', labels: names }]);
    expect(readHeadRecords(model)[0].classes).toBe(3);
    expect(model.proto.metadata_props?.find((m) => m.key === 'grl-onnx.id2label.pos')?.value).toBe('["NOUN","VERB","ADJ"]');
    expect(readLabelNames(model, 'pos')).toEqual(names);
    expect(inspectModel(model).heads[0].labels).toEqual(names);
    expect(formatInspectReport(inspectModel(model))).toContain('      labels (3): NOUN, VERB, ADJ\n');
    expect(() => addHeads(encoder, [{ name: 'pos', classes: 4, labels: names }])).toThrow(`${ENCODER}: head 'pos': 3 label names for 4 classes`);
  });

  it('never modifies the input model', () => {
    const before = serializeModel(encoder);
    addHeads(encoder, [{ name: 'pos', classes: 17, adversarial: 1 }, { name: 's', classes: 2, kind: 'seq', pool: 'mean', mlp: 4 }]);
    expect(serializeModel(encoder).equals(before)).toBe(true);
  });

  it('bad specs: one line naming the problem', () => {
    const err = (specs: Parameters<typeof addHeads>[1], m: Model = encoder) => {
      try {
        addHeads(m, specs);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err([{ name: 'pos', classes: 5, from: 'nope' }])).toBe(`${ENCODER}: --from 'nope': no such tensor in the graph (inspect lists the hidden states)`);
    expect(err([{ name: 'pos', classes: 5, from: 'pooler_output' }])).toBe(`${ENCODER}: --from 'pooler_output' has rank 2 [batch, 32]; expected hidden states [batch, sequence, d]`);
    expect(err([{ name: 'pos', classes: 1 }])).toBe(`${ENCODER}: head 'pos': classes must be an integer >= 2, got 1`);
    expect(err([{ name: 'pos', classes: 5 }, { name: 'pos', classes: 3 }])).toBe(`${ENCODER}: head 'pos' already exists (output 'pos_logits'); remove it first or pick another name`);
    const once = addHeads(encoder, [{ name: 'pos', classes: 5 }]).model;
    expect(err([{ name: 'pos', classes: 3 }], once)).toBe(`${ENCODER}: head 'pos' already exists (output 'pos_logits'); remove it first or pick another name`);
    expect(err([{ name: 'pos', classes: 3, pool: 'mean' }])).toBe(`${ENCODER}: head 'pos': pooling applies to :seq heads only`);
    expect(err([{ name: 'a b', classes: 3 }])).toMatch(/head name 'a b' must be letters/);
    // The label input of a head is named after it: 'input_ids' would only fail at train time.
    expect(err([{ name: 'input_ids', classes: 3 }])).toBe(`${ENCODER}: head name 'input_ids' is already the name of a model input; training feeds the head's labels under its name, so pick another`);
  });
});

describe('heads add on a *ForTokenClassification export', () => {
  const model = loadModel(TOKCLS);

  it('puts new heads beside `logits`, reading the same hidden states; logits stay bit-identical', async () => {
    const splice = analyzeHeads(model).heads[0].spliceTensor;
    expect(splice).toBe('/bert/encoder/layer.1/output/LayerNorm/LayerNormalization_output_0');
    const { model: m, heads } = addHeads(model, [{ name: 'pos', classes: 17, adversarial: 0.1 }]);
    expect(heads[0].from).toBe(splice);
    const r = inspectModel(m);
    expect(r.heads.map((h) => [h.name, h.output, h.exclusiveNodes, h.spliceTensor])).toEqual([
      ['logits', 'logits', 2, splice],
      ['pos', 'pos_logits', 2, splice],
    ]);
    const feeds = batchFeeds(1024);
    const before = await runFloats(TOKCLS, feeds);
    const withState = { ...m, proto: { ...m.proto, graph: { ...m.proto.graph, output: [...(m.proto.graph?.output ?? []), { name: splice }] } } };
    const after = await runFloats(withState, feeds);
    expect(Buffer.from(after.logits.data.buffer).equals(Buffer.from(before.logits.data.buffer))).toBe(true);
    expect(maxRelError(after.pos_logits.data, affine(after[splice].data, B * T, D, init(m, 'heads.pos.weight'), 17, init(m, 'heads.pos.bias')))).toBeLessThan(1e-6);
    // `logits` can be removed like any head; its classifier initializers go with it.
    const gone = removeHead(m, 'logits');
    expect(gone.removedInitializers).toEqual(['classifier.bias', 'onnx::MatMul_309']);
    expect(gone.model.proto.graph?.output?.map((o) => o.name)).toEqual(['pos_logits']);
  });
});
