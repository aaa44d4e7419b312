"""Fixture models, part 1 of the fixture pipeline: small hand-written BERT-like
PyTorch modules that scripts/export_fixtures.py exports to ONNX.

No hub downloads: every module is written here so the exported graphs are exactly
what torch.onnx emits for the common transformer patterns (post-LN BERT encoder,
tanh pooler, causal pre-LN decoder). Module attribute names are chosen so that torch's
exporter scopes the head nodes as `/pos/...`, `/ner/...`, `/cls/...`, which is what
`grl-onnx patch --head NAME` resolves against.

Run only with /usr/bin/python3 (torch 1.13).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Padding id, used by the batches and by the shipped vocabulary ([PAD] first).
PAD_ID = 0


@dataclass
class Config:
    vocab: int = 128
    d: int = 32
    layers: int = 2
    heads: int = 4
    ffn: int = 64
    max_pos: int = 64
    type_vocab: int = 2
    pos_classes: int = 17
    ner_classes: int = 9
    cls_classes: int = 3


# The tagger's sizes for the committed fixtures, the two benchmarks and the
# fresh tiny tagger of the amnesic experiment (vocab is filled in from the vocab file).
FIXTURE = Config()
BENCH_BERT_BASE = Config(vocab=30522, d=768, layers=12, heads=12, ffn=3072, max_pos=512)
BENCH_TRAIN = Config(vocab=8000, d=256, layers=4, heads=4, ffn=1024, max_pos=512)


def tiny_tagger_config(vocab: int, layers: int = 2, d: int = 128, pos_classes: int = 17, ner_classes: int = 9,
                       max_pos: int = 128) -> Config:
    return Config(vocab=vocab, d=d, layers=layers, heads=max(1, d // 32), ffn=4 * d, max_pos=max_pos,
                  pos_classes=pos_classes, ner_classes=ner_classes)


class SelfAttention(nn.Module):
    """Multi-head self-attention taking an additive mask [B, 1, 1|T, T]."""

    def __init__(self, cfg: Config):
        super().__init__()
        assert cfg.d % cfg.heads == 0, 'd must be divisible by heads'
        self.heads = cfg.heads
        self.dh = cfg.d // cfg.heads
        self.query = nn.Linear(cfg.d, cfg.d)
        self.key = nn.Linear(cfg.d, cfg.d)
        self.value = nn.Linear(cfg.d, cfg.d)
        self.output = nn.Linear(cfg.d, cfg.d)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.dh).transpose(1, 2)

    def forward(self, x, additive_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        probs = torch.softmax(scores + additive_mask, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2)
        b, t = ctx.shape[0], ctx.shape[1]
        return self.output(ctx.reshape(b, t, self.heads * self.dh))


class FeedForward(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.dense = nn.Linear(cfg.d, cfg.ffn)
        self.out = nn.Linear(cfg.ffn, cfg.d)

    def forward(self, x):
        # approximate='none' is the erf form: Div/Erf/Add/Mul in the export.
        return self.out(F.gelu(self.dense(x)))


class PostLNLayer(nn.Module):
    """BERT encoder layer: residual, then LayerNorm."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.attention_norm = nn.LayerNorm(cfg.d, eps=1e-12)
        self.ffn = FeedForward(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.d, eps=1e-12)

    def forward(self, x, additive_mask):
        x = self.attention_norm(x + self.attention(x, additive_mask))
        return self.ffn_norm(x + self.ffn(x))


class PreLNLayer(nn.Module):
    """GPT-2 style decoder layer: LayerNorm, then the sublayer, then the residual."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.attention_norm = nn.LayerNorm(cfg.d, eps=1e-5)
        self.attention = SelfAttention(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.d, eps=1e-5)
        self.ffn = FeedForward(cfg)

    def forward(self, x, additive_mask):
        x = x + self.attention(self.attention_norm(x), additive_mask)
        return x + self.ffn(self.ffn_norm(x))


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.word = nn.Embedding(cfg.vocab, cfg.d)
        self.position = nn.Embedding(cfg.max_pos, cfg.d)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.d)
        self.norm = nn.LayerNorm(cfg.d, eps=1e-12)
        # HF-style position-id buffer: exported as an int64 initializer plus a Slice.
        self.register_buffer('position_ids', torch.arange(cfg.max_pos).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.norm(x)


def padding_mask(attention_mask):
    """BERT's additive mask: 0 for real tokens, -10000 for pads, broadcast over heads and queries."""
    m = attention_mask[:, None, None, :].to(torch.float32)
    return (1.0 - m) * -10000.0


class BertEncoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.layer = nn.ModuleList([PostLNLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        mask = padding_mask(attention_mask)
        for layer in self.layer:
            x = layer(x, mask)
        return x


class MLPHead(nn.Module):
    """Two-layer token head, so the head owns several nodes beyond its projection."""

    def __init__(self, d: int, classes: int):
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.out = nn.Linear(d, classes)

    def forward(self, x):
        return self.out(F.gelu(self.dense(x)))


class PooledHead(nn.Module):
    """Sequence head: tanh pooler on token 0 (a Linear on [B, d], exported as Gemm), then a projection.

    The pooler lives inside the head module, so with a GRL before this module the pooler
    belongs to the adversary."""

    def __init__(self, d: int, classes: int):
        super().__init__()
        self.pooler = nn.Linear(d, d)
        self.out = nn.Linear(d, classes)

    def forward(self, x):
        return self.out(torch.tanh(self.pooler(x[:, 0])))


def _identity(x):
    return x


class Tagger(nn.Module):
    """Post-LN BERT-like token tagger with heads `pos` (MLP) and `ner` (Linear)."""

    output_names = ['pos_logits', 'ner_logits']
    input_names = ['input_ids', 'attention_mask', 'token_type_ids']

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = BertEncoder(cfg)
        self.pos = MLPHead(cfg.d, cfg.pos_classes)
        self.ner = nn.Linear(cfg.d, cfg.ner_classes)

    def forward(self, input_ids, attention_mask, token_type_ids, grl=None):
        h = self.encoder(input_ids, attention_mask, token_type_ids)
        grl = grl or {}
        return self.pos(grl.get('pos_logits', _identity)(h)), self.ner(grl.get('ner_logits', _identity)(h))


class Classifier(nn.Module):
    """Sequence classifier (`cls`, pooled) plus a token head (`tag`) over one BERT encoder."""

    output_names = ['cls_logits', 'tag_logits']
    input_names = ['input_ids', 'attention_mask', 'token_type_ids']

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = BertEncoder(cfg)
        self.cls = PooledHead(cfg.d, cfg.cls_classes)
        self.tag = nn.Linear(cfg.d, cfg.pos_classes)

    def forward(self, input_ids, attention_mask, token_type_ids, grl=None):
        h = self.encoder(input_ids, attention_mask, token_type_ids)
        grl = grl or {}
        return self.cls(grl.get('cls_logits', _identity)(h)), self.tag(grl.get('tag_logits', _identity)(h))


class Decoder(nn.Module):
    """Causal pre-LN decoder with a language-model head `lm` (no bias) and a token head `pos`."""

    output_names = ['pos_logits', 'lm_logits']
    input_names = ['input_ids', 'attention_mask']

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab, cfg.d)
        self.position = nn.Embedding(cfg.max_pos, cfg.d)
        self.layer = nn.ModuleList([PreLNLayer(cfg) for _ in range(cfg.layers)])
        self.final_norm = nn.LayerNorm(cfg.d, eps=1e-5)
        self.pos = nn.Linear(cfg.d, cfg.pos_classes)
        self.lm = nn.Linear(cfg.d, cfg.vocab, bias=False)

    def forward(self, input_ids, attention_mask, grl=None):
        t = input_ids.shape[1]
        # arange on a dynamic length exports as Range; triu as Trilu (opset 14); masked_fill as Where.
        x = self.word(input_ids) + self.position(torch.arange(t, device=input_ids.device).unsqueeze(0))
        future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=input_ids.device), diagonal=1)
        # A finite fill value: -inf would make any 0 * -inf in a backward graph NaN.
        mask = padding_mask(attention_mask).masked_fill(future, -10000.0)
        for layer in self.layer:
            x = layer(x, mask)
        h = self.final_norm(x)
        grl = grl or {}
        return self.pos(grl.get('pos_logits', _identity)(h)), self.lm(grl.get('lm_logits', _identity)(h))


class GradientReversal(torch.autograd.Function):
    """Identity forward, gradient x (-lambda) backward."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def grl(lam: float):
    return lambda x: GradientReversal.apply(x, lam)


@torch.no_grad()
def init_weights(model: nn.Module, seed: int, style: str):
    """Seeded initialisation, then seeded noise on EVERY parameter.

    torch's exporter merges initializers with identical values (all-ones LayerNorm
    weights, all-zero biases), so each parameter must differ from every other one.
    style 'fixture': torch defaults plus visible noise, so attention is far from uniform
    and the reference gradients are not dominated by a few tensors.
    style 'bert': BERT's N(0, 0.02) init (for models that will be trained) plus tiny noise.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if style == 'bert':
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif name.endswith('norm.weight'):
                p.fill_(1.0)
            else:
                p.zero_()
            noise = 1e-3
        elif style == 'fixture':
            if isinstance(_owner(model, name), nn.Embedding):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            noise = 0.05
        else:
            raise ValueError(f'unknown init style {style}')
        p.add_(torch.randn(p.shape, generator=g) * noise)


def _owner(model: nn.Module, param_name: str) -> nn.Module:
    return model.get_submodule(param_name.rsplit('.', 1)[0])


KINDS = {'tagger': Tagger, 'classifier': Classifier, 'decoder': Decoder}


def build(kind: str, cfg: Config, seed: int, style: str = 'fixture') -> nn.Module:
    torch.manual_seed(seed)
    model = KINDS[kind](cfg)
    init_weights(model, seed, style)
    return model.eval()
