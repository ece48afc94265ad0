#!/usr/bin/env python3
"""The PyTorch peer of bench/long_context_bench.cpp --mode train: the same decoder-only model (d_model 256,
4 heads of 64, 4 layers, RMSNorm, RoPE rotate-half, SwiGLU 704, tied embeddings, vocabulary 4,000, no biases)
and one training step on a batch of one sequence of --len random tokens: forward, cross-entropy, backward,
AdamW (lr 1e-4), median of --steps after one warm-up step. Attention is PyTorch 1.13's eager form (Debian's
python3-torch has no scaled_dot_product_attention): softmax(q k^T / 8 + mask) v over the full [T, T] scores,
causal, or banded for --window W (a mask: the same work as causal, as eager attention cannot skip it).
Prints one JSON line like tfm_bench_long_context (step_ms, tokens_per_second, peak_rss_MB).

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      /usr/bin/python3 bench/peers/torch_long_context.py --len 4096 --threads 2
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

D, HEADS, LAYERS, FF, VOCAB = 256, 4, 4, 704, 4000
HD = D // HEADS


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def rotate(x, cos, sin):  # rotate-half RoPE (Llama)
    a, b = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat((-b, a), dim=-1) * sin


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(), RMSNorm()
        self.q, self.k, self.v, self.o = (nn.Linear(D, D, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(D, FF, bias=False), nn.Linear(D, FF, bias=False)
        self.down = nn.Linear(FF, D, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).view(B, T, HEADS, HD).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        att = F.softmax((q @ k.transpose(-2, -1)) / HD**0.5 + mask, dim=-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, D))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.norm = RMSNorm()

    def forward(self, ids, cos, sin, mask):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.embed.weight.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--len", type=int, default=4096)
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    T = a.len
    pos = torch.arange(T, dtype=torch.float32)
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
    ang = torch.cat((pos[:, None] * inv, pos[:, None] * inv), dim=-1)
    cos, sin = ang.cos(), ang.sin()
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    hidden = j > i
    if a.window:
        hidden |= i - j >= a.window
    mask = torch.zeros(T, T).masked_fill(hidden, float("-inf"))
    model = Model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    times = []
    for s in range(a.steps + 1):
        ids = torch.randint(3, VOCAB, (1, T))
        labels = torch.randint(3, VOCAB, (1, T))
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(ids, cos, sin, mask).view(T, VOCAB), labels.view(T))
        loss.backward()
        opt.step()
        opt.zero_grad()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    out = {"peer": "pytorch", "torch": torch.__version__, "len": T, "threads": a.threads, "step_ms": ms,
           "tokens_per_second": T / (ms / 1000),
           "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if a.window:
        out["window"] = a.window
    print(json.dumps(out))


if __name__ == "__main__":
    main()
