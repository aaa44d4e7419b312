"""Fixture models, part 2 of the fixture pipeline: export the modules of
scripts/fixture_models.py to ONNX and record PyTorch reference gradients.

    /usr/bin/python3 scripts/export_fixtures.py                 # all fixtures + references + models/README.md
    /usr/bin/python3 scripts/export_fixtures.py --only decoder  # one fixture
    /usr/bin/python3 scripts/export_fixtures.py --bench bert-base /tmp/bert-base.onnx   # not committed
    /usr/bin/python3 scripts/export_fixtures.py --bench train /tmp/train.onnx           # not committed
    /usr/bin/python3 scripts/export_fixtures.py --tagger-init data/vocab.txt models/tiny-tagger-init.onnx \\
        --layers 2 --d 128 --pos-classes 17 --ner-classes 9

Writes models/<name>.onnx, test/fixtures/<name>.ref.json (forward outputs, losses and the
gradient of the total loss w.r.t. every parameter, keyed by ONNX initializer name, for a
plain case and a GRL case) and the generated part of models/README.md.
Tests never run this: they read the committed files.
"""
import argparse
import collections
import json
import os
import re
import sys
from dataclasses import dataclass, replace

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_models as fm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'models')
REFS = os.path.join(ROOT, 'test', 'fixtures')
SEED = 20240611
LAMBDA = 0.7
B, T = 3, 7


@dataclass
class Fixture:
    name: str
    kind: str
    opset: int
    head_a: str  # output name of the head that gets weight 1.0 and, in the GRL case, the GRL
    head_b: str  # output name of the head with weight 0.5


FIXTURES = [
    Fixture('tagger-opset14', 'tagger', 14, 'pos_logits', 'ner_logits'),
    Fixture('tagger-opset17', 'tagger', 17, 'pos_logits', 'ner_logits'),
    Fixture('classifier', 'classifier', 17, 'cls_logits', 'tag_logits'),
    Fixture('decoder', 'decoder', 14, 'pos_logits', 'lm_logits'),
]
WEIGHTS = (1.0, 0.5)


def fail(msg):
    raise SystemExit(f'export_fixtures: {msg}')


# ---------------------------------------------------------------- export

def dummy_inputs(model, batch=2, seq=5):
    ids = torch.arange(1, batch * seq + 1).reshape(batch, seq) % model.cfg.vocab
    extra = {'attention_mask': torch.ones(batch, seq, dtype=torch.long),
             'token_type_ids': torch.zeros(batch, seq, dtype=torch.long)}
    return (ids,) + tuple(extra[n] for n in model.input_names[1:])


def export(model, path, opset):
    dyn = {n: {0: 'batch', 1: 'sequence'} for n in model.input_names}
    for out in model.output_names:
        dyn[out] = {0: 'batch'} if out == 'cls_logits' else {0: 'batch', 1: 'sequence'}
    tmp = path + '.tmp'
    with torch.no_grad():
        torch.onnx.export(model, dummy_inputs(model), tmp, input_names=model.input_names,
                          output_names=model.output_names, dynamic_axes=dyn, opset_version=opset,
                          do_constant_folding=True, keep_initializers_as_inputs=False)
    os.replace(tmp, path)


def match_initializers(model, onnx_model):
    """Map every torch parameter to exactly one float ONNX initializer, by value.

    torch stores Linear weights feeding MatMul transposed (`onnx::MatMul_123`), so a 2-D
    parameter may match in either layout. Returns {param_name: (init_name, transposed)}."""
    inits = [i for i in onnx_model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    arrays = {i.name: numpy_helper.to_array(i) for i in inits}
    by_shape = collections.defaultdict(list)
    for name, a in arrays.items():
        by_shape[a.shape].append(name)
    mapping, used = {}, {}
    for pname, p in model.named_parameters():
        w = p.detach().numpy()
        hits = [(n, False) for n in by_shape[w.shape] if np.array_equal(arrays[n], w)]
        if w.ndim == 2:
            hits += [(n, True) for n in by_shape[w.T.shape] if np.array_equal(arrays[n], w.T)]
        if not hits:
            fail(f'parameter {pname} {tuple(w.shape)} matches no ONNX initializer')
        if len(hits) > 1:
            fail(f'parameter {pname} matches several initializers: {[h[0] for h in hits]}')
        init, transposed = hits[0]
        if init in used:
            fail(f'initializer {init} matches both {used[init]} and {pname} (merged by the exporter?)')
        used[init] = pname
        mapping[pname] = (init, transposed)
    extra = sorted(set(arrays) - set(used))
    if extra:
        fail(f'float initializers that are no parameter: {extra}')
    assert len(mapping) == len(arrays) == sum(1 for _ in model.parameters())
    return mapping


def export_checked(model, path, opset):
    export(model, path, opset)
    om = onnx.load(path)
    onnx.checker.check_model(om)
    return om, match_initializers(model, om)


# ---------------------------------------------------------------- batch and losses

# Helpers of make_batch, shared with scripts/export_zoo.py.

def batch_mask():
    """Real lengths 7, 5, 3 of the B=3, T=7 batch, and its attention mask."""
    lengths = torch.tensor([7, 5, 3])
    return lengths, (torch.arange(T)[None, :] < lengths[:, None]).long()


def example_token_types():
    tt = torch.zeros(B, T, dtype=torch.long)
    tt[0, 4:] = 1
    tt[1, 3:5] = 1
    return tt


def token_labels(g, mask, classes, extra_ignored):
    y = torch.randint(0, classes, (B, T), generator=g)
    y[mask == 0] = -100
    for r, c in extra_ignored:
        y[r, c] = -100
    return y


def next_token_labels(ids, mask, lengths):
    """Next-token targets; the last real token of each row has none."""
    lm = torch.full((B, T), -100, dtype=torch.long)
    lm[:, :-1] = ids[:, 1:]
    lm[mask == 0] = -100
    lm[torch.arange(B), lengths - 1] = -100
    lm[1, 1] = -100
    return lm


def make_batch(fx, cfg):
    """B=3, T=7 with trailing padding on rows 1 and 2, and labels ignored on pads and a few tokens."""
    g = torch.Generator().manual_seed(SEED + 1)
    lengths, mask = batch_mask()
    ids = torch.randint(1, cfg.vocab, (B, T), generator=g) * mask
    inputs = {'input_ids': ids, 'attention_mask': mask}
    if fx.kind != 'decoder':
        inputs['token_type_ids'] = example_token_types()
    labels = {}
    if fx.kind == 'tagger':
        labels['pos_logits'] = token_labels(g, mask, cfg.pos_classes, [(0, 2), (1, 0)])
        labels['ner_logits'] = token_labels(g, mask, cfg.ner_classes, [(0, 5), (2, 1)])
    elif fx.kind == 'classifier':
        labels['cls_logits'] = torch.tensor([2, 0, 1])
        labels['tag_logits'] = token_labels(g, mask, cfg.pos_classes, [(0, 3), (1, 1)])
    else:
        labels['pos_logits'] = token_labels(g, mask, cfg.pos_classes, [(0, 2), (1, 0)])
        labels['lm_logits'] = next_token_labels(ids, mask, lengths)
    return inputs, labels


def cross_entropy(logits, labels):
    if logits.dim() == 2:
        return F.cross_entropy(logits, labels, ignore_index=-100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def splice_tensor(onnx_model, head_output):
    """The ONNX tensor where the head module's branch leaves the trunk: the one non-constant
    input of the `/<head>/` scoped nodes that no such node produces."""
    scope = '/' + head_output.split('_')[0] + '/'
    nodes = [n for n in onnx_model.graph.node if n.name.startswith(scope)]
    produced = {o for n in nodes for o in n.output}
    consts = {i.name for i in onnx_model.graph.initializer}
    consts |= {o for n in onnx_model.graph.node if n.op_type == 'Constant' for o in n.output}
    entry = {i for n in nodes for i in n.input if i and i not in produced and i not in consts}
    if len(entry) != 1:
        fail(f'cannot find the single entry tensor of {scope}: {sorted(entry)}')
    return entry.pop()


# ---------------------------------------------------------------- JSON

class Floats:
    """A float32 array written as shortest round-trip decimals (<= 9 significant digits)."""

    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float32).ravel()


def tensor_json(t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.dtype.kind in 'iu':
        return {'dims': list(a.shape), 'data': a.ravel().tolist()}
    return {'dims': list(a.shape), 'data': Floats(a)}


def dumps(obj, indent=0):
    pad, inner = ' ' * indent, ' ' * (indent + 1)
    if isinstance(obj, Floats):
        return '[' + ','.join(_f32(x) for x in obj.a) + ']'
    if isinstance(obj, dict):
        if not obj:
            return '{}'
        items = [f'{inner}{json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in obj.items()]
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    if isinstance(obj, list) and any(isinstance(v, (dict, list, Floats)) for v in obj):
        return '[\n' + ',\n'.join(inner + dumps(v, indent + 1) for v in obj) + '\n' + pad + ']'
    if isinstance(obj, float):
        return _f32(np.float32(obj)) if np.isfinite(obj) else fail(f'non-finite value {obj}')
    return json.dumps(obj, separators=(',', ':'))


def _f32(x):
    if not np.isfinite(x):
        fail('non-finite value in reference data')
    s = repr(np.float32(x))  # shortest string that round-trips the float32
    return s[:-2] if s.endswith('.0') else s


# ---------------------------------------------------------------- references

def reference(fx, model, onnx_model, mapping, batch=None, generator='scripts/export_fixtures.py'):
    """fx.name is the model path under models/ without .onnx; batch(fx, cfg) defaults to make_batch."""
    cfg = model.cfg
    inputs, labels = (batch or make_batch)(fx, cfg)
    heads = [(fx.head_a, WEIGHTS[0]), (fx.head_b, WEIGHTS[1])]
    at = splice_tensor(onnx_model, fx.head_a)
    args = tuple(inputs[n] for n in model.input_names)
    outputs, cases = None, {}
    for case in ('plain', 'grl'):
        model.zero_grad(set_to_none=True)
        grl = {fx.head_a: fm.grl(LAMBDA)} if case == 'grl' else None
        logits = dict(zip(model.output_names, model(*args, grl=grl)))
        losses = {out: cross_entropy(logits[out], labels[out]) for out, _ in heads}
        total = sum(w * losses[out] for out, w in heads)
        total.backward()
        if outputs is None:
            outputs = logits
        else:
            for k in logits:  # the GRL is the identity forward
                assert torch.equal(logits[k], outputs[k]), k
        grads = {}
        for pname, p in model.named_parameters():
            init, transposed = mapping[pname]
            g = torch.zeros_like(p) if p.grad is None else p.grad
            g = g.t() if transposed else g
            grads[init] = {'param': pname, 'transposed': transposed, **tensor_json(g)}
        cases[case] = {
            'grl': None if case == 'plain' else {
                'head': fx.head_a.split('_')[0], 'output': fx.head_a, 'lambda': LAMBDA, 'at': at,
                'note': f'torch applies the GRL to the input of module `{fx.head_a.split("_")[0]}`, '
                        f'which is ONNX tensor {at}' + (' (before the pooler: the pooler belongs to the adversary)'
                                                         if fx.kind == 'classifier' else ''),
            },
            'total_loss': total.item(),
            'losses': {out: losses[out].item() for out, _ in heads},
            'gradients': dict(sorted(grads.items())),
        }
    check_grl_decomposition(fx, model, args, labels, cases, mapping)
    return {
        'model': f'models/{fx.name}.onnx',
        'generator': generator,
        'torch_version': torch.__version__,
        'seed': SEED,
        'loss': 'total = sum(weight * F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1), ignore_index=-100))',
        'inputs': {k: tensor_json(v) for k, v in inputs.items()},
        'heads': [{'head': out.split('_')[0], 'output': out, 'weight': w,
                   'level': 'sequence' if outputs[out].dim() == 2 else 'token',
                   'classes': outputs[out].shape[-1], 'labels': tensor_json(labels[out])} for out, w in heads],
        'outputs': {k: tensor_json(v) for k, v in outputs.items()},
        'cases': cases,
    }


def check_grl_decomposition(fx, model, args, labels, cases, mapping):
    """Guard the GRL wiring: with per-head gradients gA, gB, head A's own parameters must get
    1.0·gA, head B's 0.5·gB and the shared trunk 0.5·gB − λ·1.0·gA."""
    per_head = {}
    for out in (fx.head_a, fx.head_b):
        model.zero_grad(set_to_none=True)
        logits = dict(zip(model.output_names, model(*args)))
        cross_entropy(logits[out], labels[out]).backward()
        per_head[out] = {n: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    owner = lambda pname: next((o for o in (fx.head_a, fx.head_b) if pname.startswith(o.split('_')[0] + '.')), None)
    for pname, _ in model.named_parameters():
        ga, gb = per_head[fx.head_a][pname], per_head[fx.head_b][pname]
        h = owner(pname)
        want = WEIGHTS[0] * ga if h == fx.head_a else WEIGHTS[1] * gb if h == fx.head_b else WEIGHTS[1] * gb - LAMBDA * WEIGHTS[0] * ga
        init, transposed = mapping[pname]
        got = torch.tensor(np.asarray(cases['grl']['gradients'][init]['data'].a).reshape(cases['grl']['gradients'][init]['dims']))
        got = got.t() if transposed else got
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-6):
            fail(f'{fx.name}: GRL gradient of {pname} is not the expected decomposition')


def write_text(path, text):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- README

def describe(fx, model, om):
    ops = collections.Counter(n.op_type for n in om.graph.node)
    inits = om.graph.initializer
    params = sum(int(np.prod(i.dims)) for i in inits if i.data_type == onnx.TensorProto.FLOAT)
    path = os.path.join(MODELS, fx.name + '.onnx')
    c = model.cfg
    shape = lambda vi: '[' + ', '.join(d.dim_param or str(d.dim_value) for d in vi.type.tensor_type.shape.dim) + ']'
    lines = [
        f'### `models/{fx.name}.onnx`',
        '',
        f'- module: `{type(model).__name__}` ({fx.kind}), d={c.d}, layers={c.layers}, heads={c.heads}, '
        f'ffn={c.ffn}, vocab={c.vocab}, max positions={c.max_pos}',
        f'- opset {fx.opset}, IR {om.ir_version}, producer {om.producer_name} {om.producer_version}',
        f'- parameters: {params:,} in {sum(1 for i in inits if i.data_type == onnx.TensorProto.FLOAT)} float '
        f'initializers; file {os.path.getsize(path):,} bytes',
        '- inputs: ' + ', '.join(f'`{i.name}` int64 {shape(i)}' for i in om.graph.input),
        '- heads: ' + ', '.join(f'`{o.name.split("_")[0]}` → `{o.name}` float {shape(o)}' for o in om.graph.output),
        f'- reference gradients: `test/fixtures/{fx.name}.ref.json` (loss 1.0·CE(`{fx.head_a}`) + '
        f'0.5·CE(`{fx.head_b}`); GRL case λ={LAMBDA} on `{fx.head_a}` at `{splice_tensor(om, fx.head_a)}`)',
        f'- regenerate: `/usr/bin/python3 scripts/export_fixtures.py --only {fx.name}`',
        '- ops (' + str(len(om.graph.node)) + ' nodes): ' + ', '.join(f'{k} {v}' for k, v in sorted(ops.items())),
        '',
    ]
    return '\n'.join(lines)


BEGIN, END = '<!-- fixtures:begin (generated by scripts/export_fixtures.py) -->', '<!-- fixtures:end -->'


def update_readme(sections):
    path = os.path.join(MODELS, 'README.md')
    old = open(path).read() if os.path.exists(path) else '# Models\n\n' + BEGIN + '\n' + END + '\n'
    if BEGIN not in old or END not in old:
        old = old.rstrip('\n') + '\n\n' + BEGIN + '\n' + END + '\n'
    head, rest = old.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text(path, head + BEGIN + '\n' + '\n'.join(sections) + END + tail)


# ---------------------------------------------------------------- commands

def run_fixtures(only):
    chosen = [f for f in FIXTURES if only in (None, f.name, f.kind)]
    if not chosen:
        fail(f'unknown fixture {only}; known: {", ".join(f.name for f in FIXTURES)}')
    os.makedirs(MODELS, exist_ok=True)
    os.makedirs(REFS, exist_ok=True)
    sections = {}
    for i, fx in enumerate(FIXTURES):
        model = fm.build(fx.kind, fm.FIXTURE, SEED + i)
        path = os.path.join(MODELS, fx.name + '.onnx')
        if fx in chosen:
            om, mapping = export_checked(model, path, fx.opset)
            ref = reference(fx, model, om, mapping)
            write_text(os.path.join(REFS, fx.name + '.ref.json'), dumps(ref) + '\n')
            print(f'{fx.name}: {os.path.getsize(path):,} bytes, {len(mapping)} parameters matched, '
                  f'reference {os.path.getsize(os.path.join(REFS, fx.name + ".ref.json")):,} bytes')
        elif os.path.exists(path):
            om = onnx.load(path)
        else:
            continue
        sections[fx.name] = describe(fx, model, om)
    update_readme([sections[f.name] for f in FIXTURES if f.name in sections])


def run_bench(which, out, opset):
    cfg = {'bert-base': fm.BENCH_BERT_BASE, 'train': fm.BENCH_TRAIN}.get(which)
    if cfg is None:
        fail(f'unknown benchmark model {which}; use bert-base or train')
    model = fm.build('tagger', cfg, SEED, style='bert')
    _, mapping = export_checked(model, out, opset)
    n = sum(p.numel() for p in model.parameters())
    print(f'{out}: {which} tagger, {n:,} parameters in {len(mapping)} initializers, {os.path.getsize(out):,} bytes')


def run_tagger_init(vocab_path, out, a):
    with open(vocab_path) as f:
        vocab = [line.rstrip('\n') for line in f if line.strip()]
    if len(vocab) != len(set(vocab)):
        fail(f'{vocab_path}: duplicate tokens')
    cfg = fm.tiny_tagger_config(len(vocab), layers=a.layers, d=a.d, pos_classes=a.pos_classes,
                                ner_classes=a.ner_classes, max_pos=a.max_pos)
    model = fm.build('tagger', cfg, a.seed, style='bert')
    _, mapping = export_checked(model, out, a.opset)
    n = sum(p.numel() for p in model.parameters())
    print(f'{out}: fresh tagger, vocab {len(vocab)}, d={cfg.d}, layers={cfg.layers}, heads={cfg.heads}, '
          f'{n:,} parameters in {len(mapping)} initializers, {os.path.getsize(out):,} bytes')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--only', help='export one fixture (name or kind)')
    p.add_argument('--bench', nargs=2, metavar=('WHICH', 'OUT'), help='bert-base|train benchmark tagger')
    p.add_argument('--tagger-init', nargs=2, metavar=('VOCAB', 'OUT'), help='fresh tiny tagger for the experiment')
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--d', type=int, default=128)
    p.add_argument('--max-pos', type=int, default=128)
    p.add_argument('--pos-classes', type=int, default=17)
    p.add_argument('--ner-classes', type=int, default=9)
    p.add_argument('--opset', type=int, help='default 14 for --bench, 17 for --tagger-init')
    p.add_argument('--seed', type=int, default=SEED)
    a = p.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    if a.bench:
        run_bench(a.bench[0], a.bench[1], a.opset or 14)
    elif a.tagger_init:
        a.opset = a.opset or 17
        run_tagger_init(a.tagger_init[0], a.tagger_init[1], a)
    else:
        run_fixtures(a.only)


if __name__ == '__main__':
    main()
