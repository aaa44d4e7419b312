"""Fixture zoo, part 2: export the families of scripts/zoo_models.py to models/zoo/ and
record PyTorch reference gradients in test/fixtures/zoo/.

    /usr/bin/python3 scripts/export_zoo.py                # every family, references, models/zoo/README.md
    /usr/bin/python3 scripts/export_zoo.py --only llama   # one family (README keeps the others' sections)

Per family and opset: models/zoo/<family>-opset<N>.onnx (two heads: `pos` and a second one) and
test/fixtures/zoo/<family>-opset<N>.ref.json in the format of scripts/export_fixtures.py
(plain case and a GRL case, lambda 0.7 on `pos`); per encoder family also
models/zoo/<family>-encoder.onnx, the same trunk with the single output `last_hidden_state`.
Tests never run this: they read the committed files.
"""
import argparse
import collections
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef  # noqa: E402
import zoo_gelu as zg  # noqa: E402
import zoo_models as zm  # noqa: E402

ZOO_MODELS = os.path.join(ef.MODELS, 'zoo')
ZOO_REFS = os.path.join(ef.REFS, 'zoo')
MAX_BYTES = 200_000
GENERATOR = 'scripts/export_zoo.py'


def fixture(fam, opset):
    second = f'{fam.second}_logits'
    return ef.Fixture(f'zoo/{fam.name}-opset{opset}', fam.second_kind, opset, 'pos_logits', second)


def make_batch(fx, cfg, fam):
    """B=3, T=7, trailing padding (the family's pad id) on rows 1 and 2, some labels ignored."""
    g = torch.Generator().manual_seed(ef.SEED + 1)
    lengths, mask = ef.batch_mask()
    real = torch.randint(2, cfg.vocab, (ef.B, ef.T), generator=g)
    ids = torch.where(mask.bool(), real, torch.full_like(real, cfg.pad_id))
    inputs = {'input_ids': ids, 'attention_mask': mask}
    if 'token_type_ids' in fam.trunk.input_names:
        inputs['token_type_ids'] = ef.example_token_types()
    labels = {'pos_logits': ef.token_labels(g, mask, cfg.pos_classes, [(0, 2), (1, 0)])}
    if fam.second_kind == 'token':
        labels[fx.head_b] = ef.token_labels(g, mask, cfg.ner_classes, [(0, 5), (2, 1)])
    elif fam.second_kind == 'seq':
        labels[fx.head_b] = torch.tensor([2, 0, 1])
    else:
        labels[fx.head_b] = ef.next_token_labels(ids, mask, lengths)
    return inputs, labels


def describe(fam, cfg, path, om, extra=''):
    ops = collections.Counter(n.op_type for n in om.graph.node)
    floats = [i for i in om.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    params = sum(int(np.prod(i.dims)) for i in floats)
    shape = lambda vi: '[' + ', '.join(d.dim_param or str(d.dim_value) for d in vi.type.tensor_type.shape.dim) + ']'
    rel = os.path.relpath(path, ef.ROOT)
    return '\n'.join([
        f'### `{rel}`',
        '',
        f'- family: {fam.name} ({fam.note}); d={cfg.d}, layers={cfg.layers}, heads={cfg.heads}, ffn={cfg.ffn}, vocab={cfg.vocab}',
        f'- opset {om.opset_import[0].version}, parameters: {params:,} in {len(floats)} float initializers; file {os.path.getsize(path):,} bytes',
        '- inputs: ' + ', '.join(f'`{i.name}` {shape(i)}' for i in om.graph.input),
        '- outputs: ' + ', '.join(f'`{o.name}` {shape(o)}' for o in om.graph.output),
        *([extra] if extra else []),
        '- ops (' + str(len(om.graph.node)) + ' nodes): ' + ', '.join(f'{k} {v}' for k, v in sorted(ops.items())),
        '',
    ])


def export_family(fam, seed):
    model = zm.build(fam, seed)
    cfg = model.cfg
    sections = []
    for opset in fam.opsets:
        fx = fixture(fam, opset)
        path = os.path.join(ef.MODELS, fx.name + '.onnx')
        if opset >= zg.GELU_OPSET:
            om = zg.export_native(model, path, ef.export)
            mapping = ef.match_initializers(model, om)
        else:
            om, mapping = ef.export_checked(model, path, opset)
        if os.path.getsize(path) > MAX_BYTES:
            ef.fail(f'{path} is {os.path.getsize(path):,} bytes (limit {MAX_BYTES:,})')
        ref = ef.reference(fx, model, om, mapping, batch=lambda f, c: make_batch(f, c, fam), generator=GENERATOR)
        ref_path = os.path.join(ef.REFS, fx.name + '.ref.json')
        ef.write_text(ref_path, ef.dumps(ref) + '\n')
        print(f'{fx.name}: {os.path.getsize(path):,} bytes, {len(mapping)} parameters matched, '
              f'reference {os.path.getsize(ref_path):,} bytes')
        sections.append(describe(fam, cfg, path, om,
                                 f'- reference gradients: `test/fixtures/{fx.name}.ref.json` (1.0·CE(`pos_logits`) + '
                                 f'0.5·CE(`{fx.head_b}`); GRL case λ={ef.LAMBDA} on `pos` at `{ef.splice_tensor(om, "pos_logits")}`)'))
    enc = zm.EncoderOnly(model)
    path = os.path.join(ZOO_MODELS, f'{fam.name}-encoder.onnx')
    if fam.opsets[0] >= zg.GELU_OPSET:
        om = zg.export_native(enc, path, ef.export)
    else:
        ef.export(enc, path, fam.opsets[0])
        om = onnx.load(path)
        onnx.checker.check_model(om)
    print(f'zoo/{fam.name}-encoder: {os.path.getsize(path):,} bytes')
    sections.append(describe(fam, cfg, path, om, '- encoder only: the trunk of the model above, for `grl-onnx heads add`'))
    return sections


SECTION_BEGIN = '<!-- zoo:'


def write_readme(all_sections):
    lines = [
        '# Fixture zoo',
        '',
        'Generated by `scripts/export_zoo.py` from the from-scratch re-implementations in `scripts/zoo_models.py`',
        '(Hugging Face module layout and naming; `transformers` is not used). Each model has the head `pos`',
        '(token level) and a second head; the GRL reference case puts λ=0.7 on `pos`. The `gelu` and `gelu-tanh`',
        'families hold native Gelu nodes at opset 20 (`scripts/zoo_gelu.py`).',
        '',
    ]
    for name, secs in all_sections.items():
        lines += [f'{SECTION_BEGIN}{name} -->', '', *secs]
    ef.write_text(os.path.join(ZOO_MODELS, 'README.md'), '\n'.join(lines))


def read_sections():
    """The README's per-family sections, so `--only` keeps the others."""
    path = os.path.join(ZOO_MODELS, 'README.md')
    if not os.path.exists(path):
        return {}
    parts = open(path).read().split(SECTION_BEGIN)[1:]
    return {p.split(' -->', 1)[0]: [p.split(' -->', 1)[1].strip('\n') + '\n'] for p in parts}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--only', help='one family: ' + ', '.join(f.name for f in zm.FAMILIES))
    a = p.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    chosen = [f for f in zm.FAMILIES if a.only in (None, f.name)]
    if not chosen:
        ef.fail(f'unknown family {a.only}')
    os.makedirs(ZOO_MODELS, exist_ok=True)
    os.makedirs(ZOO_REFS, exist_ok=True)
    sections = read_sections()
    for i, fam in enumerate(zm.FAMILIES):
        if fam in chosen:
            sections[fam.name] = export_family(fam, ef.SEED + 100 + i)
    write_readme({f.name: sections[f.name] for f in zm.FAMILIES if f.name in sections})


if __name__ == '__main__':
    main()
