"""Fixture zoo, part 1b: the RMSNorm families of scripts/zoo_models.py, a T5 encoder
(log-bucketed relative position bias, gated GELU) and a Llama-style decoder (rotary
embeddings of computed positions, grouped-query attention, SiLU-gated MLP), in the
module layout and naming of Hugging Face's modeling files.

Run only with /usr/bin/python3 (torch 1.13).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

import fixture_models as fm


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
        bias = self.block[0].SelfAttention.compute_bias(t) + fm.padding_mask(attention_mask)
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
