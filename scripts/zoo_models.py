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
- t5:         RMSNorm, log-bucketed relative position bias (shared by all layers), gated GELU
- llama:      RMSNorm, rotary embeddings of computed positions (rotate-half by slice/neg/concat),
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


def additive_padding_mask(attention_mask):
    return fm.padding_mask(attention_mask)


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
        mask = additive_padding_mask(attention_mask)
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

class AlbertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab, cfg.emb)
        self.position_embeddings = nn.Embedding(cfg.max_pos, cfg.emb)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab, cfg.emb)
        self.LayerNorm = nn.LayerNorm(cfg.emb, eps=1e-12)
        self.register_buffer('position_ids', torch.arange(cfg.max_pos).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x)


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
        mask = additive_padding_mask(attention_mask)
        for _ in range(self.depth):
            x = self.albert_layer(x, mask)
        return x


# ---------------------------------------------------------------- ELECTRA

class ElectraModel(nn.Module):
    input_names = ['input_ids', 'attention_mask', 'token_type_ids']

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = AlbertEmbeddings(cfg)  # same layout: word/position/type at size E, LayerNorm
        self.embeddings_project = nn.Linear(cfg.emb, cfg.d)
        self.layer = nn.ModuleList([fm.PostLNLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings_project(self.embeddings(input_ids, token_type_ids))
        mask = additive_padding_mask(attention_mask)
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


# ---------------------------------------------------------------- T5 encoder

class RMSNorm(nn.Module):
    """T5LayerNorm / LlamaRMSNorm: scale only, no mean subtraction, no bias."""

    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.variance_epsilon = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def t5_relative_position_bucket(relative_position, num_buckets, max_distance):
    """HF T5Attention._relative_position_bucket, bidirectional."""
    num_buckets //= 2
    buckets = (relative_position > 0).to(torch.long) * num_buckets
    relative_position = torch.abs(relative_position)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


class T5Attention(nn.Module):
    def __init__(self, cfg, has_bias):
        super().__init__()
        self.n_heads, self.dh = cfg.heads, cfg.d // cfg.heads
        self.q = nn.Linear(cfg.d, cfg.d, bias=False)
        self.k = nn.Linear(cfg.d, cfg.d, bias=False)
        self.v = nn.Linear(cfg.d, cfg.d, bias=False)
        self.o = nn.Linear(cfg.d, cfg.d, bias=False)
        self.buckets, self.max_distance = cfg.buckets, cfg.max_distance
        if has_bias:
            self.relative_attention_bias = nn.Embedding(cfg.buckets, cfg.heads)

    def compute_bias(self, t):
        ctx = torch.arange(t, dtype=torch.long)[:, None]
        mem = torch.arange(t, dtype=torch.long)[None, :]
        bucket = t5_relative_position_bucket(mem - ctx, self.buckets, self.max_distance)
        return self.relative_attention_bias(bucket).permute([2, 0, 1]).unsqueeze(0)

    def forward(self, x, bias):
        b = x.shape[0]
        shape = lambda y: y.view(b, -1, self.n_heads, self.dh).transpose(1, 2)
        q, k, v = shape(self.q(x)), shape(self.k(x)), shape(self.v(x))
        scores = torch.matmul(q, k.transpose(3, 2)) + bias  # T5: no 1/sqrt(d) scaling
        ctx = torch.matmul(F.softmax(scores.float(), dim=-1), v)
        return self.o(ctx.transpose(1, 2).reshape(b, -1, self.n_heads * self.dh))


class T5DenseGatedActDense(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wi_0 = nn.Linear(cfg.d, cfg.ffn, bias=False)
        self.wi_1 = nn.Linear(cfg.d, cfg.ffn, bias=False)
        self.wo = nn.Linear(cfg.ffn, cfg.d, bias=False)

    def forward(self, x):
        return self.wo(gelu_new(self.wi_0(x)) * self.wi_1(x))


class T5Block(nn.Module):
    def __init__(self, cfg, has_bias):
        super().__init__()
        self.SelfAttention = T5Attention(cfg, has_bias)
        self.attention_norm = RMSNorm(cfg.d, 1e-6)
        self.DenseReluDense = T5DenseGatedActDense(cfg)
        self.ff_norm = RMSNorm(cfg.d, 1e-6)

    def forward(self, x, bias):
        x = x + self.SelfAttention(self.attention_norm(x), bias)
        return x + self.DenseReluDense(self.ff_norm(x))


class T5EncoderModel(nn.Module):
    input_names = ['input_ids', 'attention_mask']

    def __init__(self, cfg):
        super().__init__()
        self.shared = nn.Embedding(cfg.vocab, cfg.d)
        self.block = nn.ModuleList([T5Block(cfg, has_bias=(i == 0)) for i in range(cfg.layers)])
        self.final_layer_norm = RMSNorm(cfg.d, 1e-6)

    def forward(self, input_ids, attention_mask):
        x = self.shared(input_ids)
        t = input_ids.shape[1]
        # The first block's relative position bias plus the padding mask, shared by every block.
        bias = self.block[0].SelfAttention.compute_bias(t) + additive_padding_mask(attention_mask)
        for blk in self.block:
            x = blk(x, bias)
        return self.final_layer_norm(x)


# ---------------------------------------------------------------- Llama-style decoder

def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaRotaryEmbedding(nn.Module):
    """cos/sin of position * inv_freq. inv_freq is a parameter here: grl-onnx trains every float
    initializer that is not frozen, as it would a real export's inv_freq, so the reference covers it."""

    def __init__(self, dh, base=10000.0):
        super().__init__()
        self.inv_freq = nn.Parameter(1.0 / (base ** (torch.arange(0, dh, 2).float() / dh)))

    def forward(self, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]


def repeat_kv(x, n_rep):
    b, kv, t, dh = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, dh).reshape(b, kv * n_rep, t, dh)


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.kv_heads, self.dh = cfg.heads, cfg.kv_heads, cfg.d // cfg.heads
        self.q_proj = nn.Linear(cfg.d, cfg.heads * self.dh, bias=False)
        self.k_proj = nn.Linear(cfg.d, cfg.kv_heads * self.dh, bias=False)
        self.v_proj = nn.Linear(cfg.d, cfg.kv_heads * self.dh, bias=False)
        self.o_proj = nn.Linear(cfg.heads * self.dh, cfg.d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(b, t, self.n_heads, self.dh).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.dh).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, self.n_heads // self.kv_heads), repeat_kv(v, self.n_heads // self.kv_heads)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.dh)
        scores = scores.masked_fill(mask, -10000.0)  # finite: -inf would make 0 * -inf NaN in a backward graph
        probs = F.softmax(scores, dim=-1, dtype=torch.float32)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(ctx)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d, cfg.ffn, bias=False)
        self.up_proj = nn.Linear(cfg.d, cfg.ffn, bias=False)
        self.down_proj = nn.Linear(cfg.ffn, cfg.d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d, 1e-6)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d, 1e-6)
        self.mlp = LlamaMLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    input_names = ['input_ids', 'attention_mask']

    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.d)
        self.rotary_emb = LlamaRotaryEmbedding(cfg.d // cfg.heads)
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.d, 1e-6)

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        # Positions computed from the mask, as generation code does (left padding safe).
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
        cos, sin = self.rotary_emb(position_ids)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=input_ids.device), diagonal=1)
        mask = causal[None, None, :, :] | (attention_mask == 0)[:, None, None, :]
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


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
    fm.init_weights(model, seed, 'fixture')
    return model.eval()
