"""Encoder-only fixtures: small PyTorch modules with the architecture and the
parameter names of Hugging Face's `BertModel` and `BertForTokenClassification`,
exported the way `torch.onnx.export` / optimum export them, and the PyTorch
reference gradients for heads that `grl-onnx heads add` puts on them.

    /usr/bin/python3 scripts/export_encoder.py models       # the encoder fixtures below
    /usr/bin/python3 scripts/export_encoder.py reference HEADS.onnx NAME [--batch mlm]
        # HEADS.onnx = a `grl-onnx heads add` output on test/fixtures/encoders/bert-mini.onnx;
        # writes test/fixtures/NAME.ref.json (format of test/fixtures/reference.ts)

Models (all seeded; noise on every parameter so the exporter merges no initializers):
- models/encoders/bert-encoder.onnx: BertModel, vocab 30,522 (bert-base-uncased), d=32,
  2 layers, 4 attention heads, ffn 128, 512 positions, opset 14; outputs `last_hidden_state`
  and `pooler_output`, as optimum exports a BertModel.
- models/encoders/bert-encoder-tokcls.onnx: BertForTokenClassification (no pooler), vocab 1,024,
  9 labels, opset 17; one output `logits`.
- test/fixtures/encoders/bert-mini.onnx: BertModel, vocab 128, 64 positions, opset 17, both outputs:
  the encoder the reference gradients are computed on (small, so the references stay small).

Tests never run this: they read the committed files. Run only with /usr/bin/python3 (torch 1.13).
"""
import argparse
import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef  # noqa: E402  (JSON writer, initializer matching)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261206
B, T = 3, 7


@dataclass
class Config:
    vocab: int
    d: int = 32
    layers: int = 2
    heads: int = 4
    ffn: int = 128
    max_pos: int = 512
    type_vocab: int = 2
    labels: int = 9


# ---------------------------------------------------------------- HF BertModel, by its names

class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab, c.d)
        self.position_embeddings = nn.Embedding(c.max_pos, c.d)
        self.token_type_embeddings = nn.Embedding(c.type_vocab, c.d)
        self.LayerNorm = nn.LayerNorm(c.d, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer('position_ids', torch.arange(c.max_pos).expand((1, -1)), persistent=False)

    def forward(self, input_ids, token_type_ids):
        position_ids = self.position_ids[:, : input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.dh = c.heads, c.d // c.heads
        self.query, self.key, self.value = nn.Linear(c.d, c.d), nn.Linear(c.d, c.d), nn.Linear(c.d, c.d)
        self.dropout = nn.Dropout(0.1)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.h, self.dh)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask
        ctx = torch.matmul(self.dropout(F.softmax(scores, dim=-1)), v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.h * self.dh,))


class BertSelfOutput(nn.Module):
    def __init__(self, c, width):
        super().__init__()
        self.dense = nn.Linear(width, c.d)
        self.LayerNorm = nn.LayerNorm(c.d, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, 'self', BertSelfAttention(c))
        self.output = BertSelfOutput(c, c.d)

    def forward(self, x, mask):
        return self.output(getattr(self, 'self')(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.d, c.ffn)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertSelfOutput(c, c.ffn)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.layers)])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.d, c.d)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


def extended_attention_mask(attention_mask):
    """transformers' get_extended_attention_mask for an encoder."""
    m = attention_mask[:, None, None, :].to(torch.float32)
    return (1.0 - m) * torch.finfo(torch.float32).min


class BertModel(nn.Module):
    input_names = ['input_ids', 'attention_mask', 'token_type_ids']
    output_names = ['last_hidden_state', 'pooler_output']

    def __init__(self, c, pooler=True):
        super().__init__()
        self.cfg = c
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c) if pooler else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.encoder(self.embeddings(input_ids, token_type_ids), extended_attention_mask(attention_mask))
        return (h, self.pooler(h)) if self.pooler is not None else (h,)


class BertForTokenClassification(nn.Module):
    input_names = BertModel.input_names
    output_names = ['logits']

    def __init__(self, c):
        super().__init__()
        self.cfg = c
        self.bert = BertModel(c, pooler=False)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(c.d, c.labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return (self.classifier(self.dropout(self.bert(input_ids, attention_mask, token_type_ids)[0])),)


@torch.no_grad()
def init_bert(model, seed):
    """BERT's init (N(0, 0.02) matrices, LayerNorm 1/0, zero biases) plus seeded noise on every
    parameter: the exporter merges initializers with equal values, and a model that will be
    trained must not have its LayerNorms tied."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        elif 'LayerNorm.weight' in name:
            p.fill_(1.0)
        else:
            p.zero_()
        p.add_(torch.randn(p.shape, generator=g) * 0.02)


def build(kind, c, seed):
    torch.manual_seed(seed)
    model = BertModel(c) if kind == 'bert' else BertForTokenClassification(c)
    init_bert(model, seed)
    return model.eval()


def export(model, path, opset):
    dyn = {n: {0: 'batch', 1: 'sequence'} for n in model.input_names + model.output_names}
    if 'pooler_output' in dyn:
        dyn['pooler_output'] = {0: 'batch'}
    ids = torch.tensor([[101, 7, 8, 9, 102], [101, 5, 6, 102, 0]])
    args = (ids, (ids != 0).long(), torch.zeros_like(ids))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with torch.no_grad():
        torch.onnx.export(model, args, tmp, input_names=model.input_names, output_names=model.output_names,
                          dynamic_axes=dyn, opset_version=opset, do_constant_folding=True)
    os.replace(tmp, path)
    om = onnx.load(path)
    onnx.checker.check_model(om)
    return om, ef.match_initializers(model, om)


MODELS = [
    # (path, kind, config, opset, seed)
    ('models/encoders/bert-encoder.onnx', 'bert', Config(vocab=30522), 14, SEED),
    ('models/encoders/bert-encoder-tokcls.onnx', 'tokcls', Config(vocab=1024), 17, SEED + 1),
    ('test/fixtures/encoders/bert-mini.onnx', 'bert', Config(vocab=128, max_pos=64), 17, SEED + 2),
]


def run_models():
    for rel, kind, c, opset, seed in MODELS:
        path = os.path.join(ROOT, rel)
        model = build(kind, c, seed)
        _, mapping = export(model, path, opset)
        n = sum(p.numel() for p in model.parameters())
        print(f'{rel}: {type(model).__name__} vocab {c.vocab}, d={c.d}, layers={c.layers}, opset {opset}, '
              f'{n:,} parameters in {len(mapping)} initializers, {os.path.getsize(path):,} bytes')


# ---------------------------------------------------------------- heads, rebuilt from a heads-added ONNX file

def init_array(om, name):
    for t in om.graph.initializer:
        if t.name == name:
            return torch.tensor(numpy_helper.to_array(t).copy())
    ef.fail(f'no initializer {name}')


def metadata(om, key):
    for p in om.metadata_props:
        if p.key == key:
            return json.loads(p.value)
    return None


def gelu(x):
    return F.gelu(x)  # the erf form, as heads add emits below opset 20


class Heads(nn.Module):
    """The heads of a `grl-onnx heads add` output, as torch modules holding the ONNX weights."""

    def __init__(self, om, encoder):
        super().__init__()
        self.specs = metadata(om, 'grl-onnx.heads') or ef.fail('no grl-onnx.heads metadata')
        names = {t.name for t in om.graph.initializer}
        self.params = nn.ParameterDict()
        for s in self.specs:
            for suffix in ('dense.weight', 'dense.bias', 'weight', 'bias', 'transform.dense.weight',
                           'transform.dense.bias', 'transform.LayerNorm.weight', 'transform.LayerNorm.bias',
                           'decoder.weight'):
                full = f'heads.{s["name"]}.{suffix}'
                if full in names:
                    self.params[full.replace('.', '__')] = nn.Parameter(init_array(om, full))
        self.word = encoder.embeddings.word_embeddings.weight
        self.grls = {}
        for n in om.graph.node:
            if n.op_type == 'GradientReversal':
                attrs = {a.name: a for a in n.attribute}
                self.grls[attrs['head'].s.decode()] = attrs['lambda'].f

    def p(self, name):
        return self.params[name.replace('.', '__')]

    def has(self, name):
        return name.replace('.', '__') in self.params

    def forward(self, h, attention_mask, grl):
        out = {}
        for s in self.specs:
            x = h
            if grl and s['name'] in self.grls:
                x = ef.fm.grl(self.grls[s['name']])(x)
            pre = f'heads.{s["name"]}.'
            if s['kind'] == 'mlm':
                x = gelu(x @ self.p(pre + 'transform.dense.weight') + self.p(pre + 'transform.dense.bias'))
                x = F.layer_norm(x, (x.shape[-1],), self.p(pre + 'transform.LayerNorm.weight'),
                                 self.p(pre + 'transform.LayerNorm.bias'), eps=1e-12)
                w = self.p(pre + 'decoder.weight') if self.has(pre + 'decoder.weight') else self.word.t()
                out[s['output']] = x @ w + self.p(pre + 'bias')
                continue
            if s['kind'] == 'seq':
                if s['pool'] == 'cls':
                    x = x[:, 0]
                else:
                    m = attention_mask.to(x.dtype)[:, :, None]
                    x = (x * m).sum(1) / m.sum(1)
            if self.has(pre + 'dense.weight'):
                x = gelu(x @ self.p(pre + 'dense.weight') + self.p(pre + 'dense.bias'))
            out[s['output']] = x @ self.p(pre + 'weight') + self.p(pre + 'bias')
        return out


def mini_encoder():
    rel, kind, c, opset, seed = MODELS[2]
    return build(kind, c, seed)


def make_batch(vocab, specs):
    g = torch.Generator().manual_seed(SEED + 7)
    lengths = torch.tensor([7, 5, 3])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1, vocab, (B, T), generator=g) * mask
    tt = torch.zeros(B, T, dtype=torch.long)
    tt[0, 4:] = 1
    inputs = {'input_ids': ids, 'attention_mask': mask, 'token_type_ids': tt}
    labels = {}
    for s in specs:
        if s['kind'] == 'seq':
            labels[s['output']] = torch.randint(0, s['classes'], (B,), generator=g)
        elif s['kind'] == 'mlm':
            y = torch.full((B, T), -100, dtype=torch.long)
            for r, c in [(0, 1), (0, 4), (1, 2), (2, 0), (2, 2)]:  # "masked" positions
                y[r, c] = torch.randint(0, vocab, (1,), generator=g).item()
            labels[s['output']] = y
        else:
            y = torch.randint(0, s['classes'], (B, T), generator=g)
            y[mask == 0] = -100
            y[0, 2] = -100
            labels[s['output']] = y
    return inputs, labels


def run_reference(heads_path, name):
    om = onnx.load(heads_path)
    enc = mini_encoder()
    # The encoder's initializers in the heads model must be the mini encoder's, unchanged.
    mapping = match_subset(enc, om)
    heads = Heads(om, enc)
    specs = heads.specs
    weights = {s['output']: (1.0 if k == 0 else 0.5) for k, s in enumerate(specs)}
    inputs, labels = make_batch(enc.cfg.vocab, specs)
    args = tuple(inputs[n] for n in BertModel.input_names)
    named = {**{pn: (p, mapping[pn]) for pn, p in enc.named_parameters()},
             **{k.replace('__', '.'): (p, (k.replace('__', '.'), False)) for k, p in heads.params.items()}}
    outputs, cases = None, {}
    for case in ('plain', 'grl'):
        if case == 'grl' and not heads.grls:
            continue
        for p, _ in named.values():
            p.grad = None
        h, pooled = enc(*args)
        logits = heads(h, inputs['attention_mask'], grl=(case == 'grl'))
        losses = {o: ef.cross_entropy(logits[o], labels[o]) for o in weights}
        total = sum(w * losses[o] for o, w in weights.items())
        total.backward()
        if outputs is None:
            outputs = {'last_hidden_state': h, 'pooler_output': pooled, **logits}
        grads = {}
        for pn, (p, (init, transposed)) in named.items():
            if p.grad is None:
                continue  # not on a path to the losses (the pooler): not trained
            g = p.grad.t() if transposed else p.grad
            grads[init] = {'param': pn, 'transposed': transposed, **ef.tensor_json(g)}
        grl_head = next(iter(heads.grls), None)
        cases[case] = {
            'grl': None if case == 'plain' else {
                'head': grl_head, 'output': f'{grl_head}_logits', 'lambda': heads.grls[grl_head],
                'at': 'last_hidden_state', 'note': 'spliced by heads add --adversarial'},
            'total_loss': total.item(),
            'losses': {o: losses[o].item() for o in weights},
            'gradients': dict(sorted(grads.items())),
        }
    ref = {
        'model': os.path.relpath(heads_path, ROOT),
        'generator': 'scripts/export_encoder.py reference',
        'torch_version': torch.__version__,
        'seed': SEED,
        'loss': 'total = sum(weight * F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1), ignore_index=-100))',
        'inputs': {k: ef.tensor_json(v) for k, v in inputs.items()},
        'heads': [{'head': s['name'], 'output': s['output'], 'weight': weights[s['output']],
                   'level': 'sequence' if s['kind'] == 'seq' else 'token', 'classes': s['classes'],
                   'labels': ef.tensor_json(labels[s['output']])} for s in specs],
        'outputs': {k: ef.tensor_json(v) for k, v in outputs.items()},
        'cases': cases,
    }
    dest = os.path.join(ROOT, 'test', 'fixtures', name + '.ref.json')
    ef.write_text(dest, ef.dumps(ref) + '\n')
    print(f'{dest}: {len(specs)} heads, cases {list(cases)}, {os.path.getsize(dest):,} bytes')


def match_subset(model, om):
    """ef.match_initializers for a model whose ONNX file also holds initializers that are not its own."""
    keep = [t for t in om.graph.initializer if not t.name.startswith('heads.')]
    sub = onnx.ModelProto()
    sub.graph.initializer.extend(keep)
    return ef.match_initializers(model, sub)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('models')
    r = sub.add_parser('reference')
    r.add_argument('heads_model')
    r.add_argument('name')
    a = p.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    if a.cmd == 'models':
        run_models()
    else:
        run_reference(a.heads_model, a.name)


if __name__ == '__main__':
    main()
