"""Fixture zoo, part 1: from-scratch PyTorch re-implementations of the common
encoder families, in the module layout and naming of Hugging Face's modeling
files (transformers is not installable here), small enough to commit.

scripts/export_zoo.py exports them to models/zoo/ and records reference gradients.
Each family has two task heads, `pos` (token level) and a second one, named as
module attributes so torch's exporter scopes them `/pos/...`, and an
encoder-only wrapper whose single output is `last_hidden_state`.

What each family adds over the BERT and GPT-2-like fixtures (scripts/fixture_models.py):
- roberta:    position ids = cumsum(input_ids.ne(pad)) * mask + pad (CumSum, Not/Equal, Cast chains)
- distilbert: no token_type_ids, positions by arange (Range), mask applied with masked_fill (Where)
- albert:     factorized embeddings (E < d, mapped in) and one layer shared across depths
- electra:    embedding projection (E -> d), classification head on token 0
- t5:         (in zoo_rmsnorm.py) RMSNorm, log-bucketed relative position bias (shared by all layers), gated GELU
- gelu, gelu-tanh: (in zoo_gelu.py) BERT exported with native Gelu nodes at opset 20,
              approximate='none' and 'tanh'
- llama:      (in zoo_rmsnorm.py) RMSNorm, rotary embeddings of computed positions (rotate-half by slice/neg/concat),
              grouped-query attention (k/v repeated by expand + reshape), causal masked_fill,
              SiLU-gated MLP

Run only with /usr/bin/python3 (torch 1.13).
"""
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

import fixture_models as fm
from zoo_gelu import BertGeluModel, BertGeluTanhModel, pos_head
from zoo_rmsnorm import LlamaModel, T5EncoderModel


@dataclass
class ZooConfig:
    vocab: int = 96
    d: int = 32
    emb: int = 16          # factorized / projected embedding size (albert, electra)
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2      # llama's grouped-query attention
    ffn: int = 48
    max_pos: int = 40
    type_vocab: int = 2
    pos_classes: int = 7
    ner_classes: int = 5
    cls_classes: int = 3
    buckets: int = 8       # t5 relative-position buckets
    max_distance: int = 16
    pad_id: int = 0


ZOO = ZooConfig()


def _identity(x):
    return x


# ---------------------------------------------------------------- RoBERTa

def create_position_ids_from_input_ids(input_ids, padding_idx):
    """HF modeling_roberta: pads keep padding_idx, real tokens count up from padding_idx + 1."""
    mask = input_ids.ne(padding_idx).int()
    incremental = torch.cumsum(mask, dim=1).type_as(mask) * mask
    return incremental.long() + padding_idx


class RobertaEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab, cfg.d)
        self.position_embeddings = nn.Embedding(cfg.max_pos, cfg.d)
        self.token_type_embeddings = nn.Embedding(1, cfg.d)
        self.LayerNorm = nn.LayerNorm(cfg.d, eps=1e-5)
        self.padding_idx = cfg.pad_id

    def forward(self, input_ids):
        positions = create_position_ids_from_input_ids(input_ids, self.padding_idx)
        types = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(types) + self.position_embeddings(positions)
        return self.LayerNorm(x)


class RobertaModel(nn.Module):
    input_names = ['input_ids', 'attention_mask']

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = RobertaEmbeddings(cfg)
        self.layer = nn.ModuleList([fm.PostLNLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask):
        x = self.embeddings(input_ids)
        mask = fm.padding_mask(attention_mask)
        for layer in self.layer:
            x = layer(x, mask)
        return x


# ---------------------------------------------------------------- DistilBERT

class DistilEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab, cfg.d)
        self.position_embeddings = nn.Embedding(cfg.max_pos, cfg.d)
        self.LayerNorm = nn.LayerNorm(cfg.d, eps=1e-12)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], dtype=torch.long, device=input_ids.device).unsqueeze(0).expand_as(input_ids)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class DistilAttention(nn.Module):
    """MultiHeadSelfAttention: q scaled before the product, mask applied with masked_fill."""

    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.dh = cfg.heads, cfg.d // cfg.heads
        self.q_lin, self.k_lin = nn.Linear(cfg.d, cfg.d), nn.Linear(cfg.d, cfg.d)
        self.v_lin, self.out_lin = nn.Linear(cfg.d, cfg.d), nn.Linear(cfg.d, cfg.d)

    def forward(self, x, attention_mask):
        bs, t = x.shape[0], x.shape[1]
        shape = lambda y: y.view(bs, -1, self.n_heads, self.dh).transpose(1, 2)
        q = shape(self.q_lin(x)) / math.sqrt(self.dh)
        k, v = shape(self.k_lin(x)), shape(self.v_lin(x))
        scores = torch.matmul(q, k.transpose(2, 3))
        mask = (attention_mask == 0).view(bs, 1, 1, t).expand_as(scores)
        scores = scores.masked_fill(mask, -10000.0)
        ctx = torch.matmul(F.softmax(scores, dim=-1), v)
        return self.out_lin(ctx.transpose(1, 2).reshape(bs, -1, self.n_heads * self.dh))


class DistilLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = DistilAttention(cfg)
        self.sa_layer_norm = nn.LayerNorm(cfg.d, eps=1e-12)
        self.ffn = fm.FeedForward(cfg)
        self.output_layer_norm = nn.LayerNorm(cfg.d, eps=1e-12)

    def forward(self, x, attention_mask):
        x = self.sa_layer_norm(self.attention(x, attention_mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class DistilBertModel(nn.Module):
    input_names = ['input_ids', 'attention_mask']

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = DistilEmbeddings(cfg)
        self.layer = nn.ModuleList([DistilLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask):
        x = self.embeddings(input_ids)
        for layer in self.layer:
            x = layer(x, attention_mask)
        return x


class DistilClassifierHead(nn.Module):
    """DistilBertForSequenceClassification: pre_classifier + ReLU on token 0, then the classifier."""

    def __init__(self, d, classes):
        super().__init__()
        self.pre_classifier = nn.Linear(d, d)
        self.classifier = nn.Linear(d, classes)

    def forward(self, x):
        return self.classifier(F.relu(self.pre_classifier(x[:, 0])))


# ---------------------------------------------------------------- ALBERT

def AlbertEmbeddings(cfg):
    """BERT's embeddings (word, position buffer sliced, token type, LayerNorm) at the size E."""
    return fm.BertEmbeddings(replace(cfg, d=cfg.emb))


class AlbertModel(nn.Module):
    """One layer (albert_layer) applied `layers` times: its weights are read at every depth."""

    input_names = ['input_ids', 'attention_mask', 'token_type_ids']

    def __init__(self, cfg):
        super().__init__()
        self.depth = cfg.layers
        self.embeddings = AlbertEmbeddings(cfg)
        self.embedding_hidden_mapping_in = nn.Linear(cfg.emb, cfg.d)
        self.albert_layer = fm.PostLNLayer(cfg)

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embedding_hidden_mapping_in(self.embeddings(input_ids, token_type_ids))
        mask = fm.padding_mask(attention_mask)
        for _ in range(self.depth):
            x = self.albert_layer(x, mask)
        return x


# ---------------------------------------------------------------- ELECTRA

class ElectraModel(nn.Module):
    input_names = ['input_ids', 'attention_mask', 'token_type_ids']

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = AlbertEmbeddings(cfg)
        self.embeddings_project = nn.Linear(cfg.emb, cfg.d)
        self.layer = nn.ModuleList([fm.PostLNLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings_project(self.embeddings(input_ids, token_type_ids))
        mask = fm.padding_mask(attention_mask)
        for layer in self.layer:
            x = layer(x, mask)
        return x


class ElectraClassificationHead(nn.Module):
    """dense + GELU on token 0, then out_proj (HF ElectraClassificationHead without dropout)."""

    def __init__(self, d, classes):
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, classes)

    def forward(self, x):
        return self.out_proj(F.gelu(self.dense(x[:, 0, :])))


# ---------------------------------------------------------------- task models

class TwoHeads(nn.Module):
    """A trunk plus head `pos` (token MLP) and a second head (`second`), as attribute names."""

    def __init__(self, cfg, prefix, trunk, second, second_module):
        super().__init__()
        self.cfg = cfg
        self.prefix = prefix  # HF's base_model_prefix: the trunk's attribute and node scope
        setattr(self, prefix, trunk)
        self.input_names = trunk.input_names
        self.output_names = ['pos_logits', f'{second}_logits']
        self.pos = fm.MLPHead(cfg.d, cfg.pos_classes)
        self.second = second
        setattr(self, second, second_module)

    def forward(self, *args, grl=None):
        h = getattr(self, self.prefix)(*args)
        grl = grl or {}
        outs = []
        for out in self.output_names:
            outs.append(getattr(self, out.split('_')[0])(grl.get(out, _identity)(h)))
        return tuple(outs)


class EncoderOnly(nn.Module):
    """The trunk alone, output `last_hidden_state` (what `grl-onnx heads add` starts from)."""

    output_names = ['last_hidden_state']

    def __init__(self, model):
        super().__init__()
        self.cfg = model.cfg
        self.prefix = model.prefix
        setattr(self, model.prefix, getattr(model, model.prefix))
        self.input_names = model.input_names

    def forward(self, *args):
        return getattr(self, self.prefix)(*args)


@dataclass
class Family:
    name: str
    prefix: str
    trunk: type
    second: str           # name of the second head
    second_kind: str      # 'token' | 'seq' | 'lm'
    opsets: tuple
    note: str


FAMILIES = [
    Family('roberta', 'roberta', RobertaModel, 'ner', 'token', (17, 14), 'positions: cumsum(input_ids.ne(pad)) * mask + pad'),
    Family('distilbert', 'distilbert', DistilBertModel, 'cls', 'seq', (17,), 'no token_type_ids; masked_fill mask; arange positions'),
    Family('albert', 'albert', AlbertModel, 'ner', 'token', (17,), 'factorized embeddings (E=16 -> d=32); one layer shared across 2 depths'),
    Family('electra', 'electra', ElectraModel, 'cls', 'seq', (17,), 'embedding projection (E=16 -> d=32); classification head on token 0'),
    Family('t5', 'encoder', T5EncoderModel, 'ner', 'token', (17,), 'RMSNorm, log-bucketed relative position bias, gated GELU (tanh form)'),
    Family('llama', 'model', LlamaModel, 'lm', 'lm', (17,), 'RMSNorm, rotary of computed positions, GQA (4 q / 2 kv heads), causal masked_fill, SiLU-gated MLP'),
    Family('gelu', 'bert', BertGeluModel, 'ner', 'token', (20,), "BERT post-LN; native Gelu-20, approximate='none', in the FFNs and the pos head"),
    Family('gelu-tanh', 'bert', BertGeluTanhModel, 'ner', 'token', (20,), "BERT post-LN; native Gelu-20, approximate='tanh', in the FFNs and the pos head"),
]


def second_head(fam, cfg):
    if fam.second_kind == 'token':
        return nn.Linear(cfg.d, cfg.ner_classes)
    if fam.second_kind == 'lm':
        return nn.Linear(cfg.d, cfg.vocab, bias=False)
    if fam.name == 'distilbert':
        return DistilClassifierHead(cfg.d, cfg.cls_classes)
    return ElectraClassificationHead(cfg.d, cfg.cls_classes)


def config(fam):
    # RoBERTa's vocabularies put <pad> at 1, and its position ids start after it.
    return replace(ZOO, pad_id=1) if fam.name == 'roberta' else ZOO


def build(fam, seed):
    cfg = config(fam)
    torch.manual_seed(seed)
    model = TwoHeads(cfg, fam.prefix, fam.trunk(cfg), fam.second, second_head(fam, cfg))
    if hasattr(fam.trunk, 'approximate'):
        model.pos = pos_head(cfg, fam.trunk.approximate)
    fm.init_weights(model, seed, 'fixture')
    return model.eval()
