#!/usr/bin/env python3
"""PyTorch peers of `attnkit bench`: the same workloads and shapes, the
same JSON object. CPU, `torch.set_num_threads(--threads)`.

  python bench/peer_pytorch.py mha-forward --batch 4 --heads 8 --len 512 --embed 512 --threads 2

Workloads: mha-forward, mha-forward-fused (need_weights=False: PyTorch's fused path),
mha-train-step (forward, MSE backward, Adam step; --causal adds a boolean [L, L] mask,
True above the diagonal), sdpa-fused
(F.scaled_dot_product_attention), gemm, copy, aaren-parallel (the Hillis-Steele scan
written with torch ops), aaren-iterative (the cell, one token at a time), aaren-fused
(PyTorch has no fused form: the layer with the scan), aaren-scan-parallel |
aaren-scan-fused (the scan alone), aaren-scan-iterative, kv-cache-decode (one decoding
step with --len cached tokens), count-train (one SGD step of the counting task),
bilstm-train-step | bigru-train-step (embedding, bidirectional LSTM/GRU, last hidden
states of both directions, linear to 2 classes, cross-entropy, Adam step; defaults
--batch 64 --len 200 --embed 50 --hidden 64 --vocab 20000), aaren-train-step (the Aaren
layer with its scan, MSE backward, Adam step; defaults --batch 4 --heads 4 --len 4096
--embed 256), aaren-scan-train-step (the scan alone, forward and backward by autograd
from the gradient of sum(output * R); same defaults).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timed(runs, fn):
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def aaren_scan(s, v):
    """All prefix outputs of softmax attention with one query: s [B,H,L], v [B,H,L,D]."""
    m, w, u = s, torch.ones_like(s), v
    L = s.shape[-1]
    off = 1
    while off < L:
        ma, wa, ua = m[..., :-off], w[..., :-off], u[..., :-off, :]
        mb, wb, ub = m[..., off:], w[..., off:], u[..., off:, :]
        M = torch.maximum(ma, mb)
        a, b = torch.exp(ma - M), torch.exp(mb - M)
        m = torch.cat([m[..., :off], M], -1)
        w = torch.cat([w[..., :off], wa * a + wb * b], -1)
        u = torch.cat([u[..., :off, :], ua * a[..., None] + ub * b[..., None]], -2)
        off *= 2
    return u / w[..., None]


class Aaren(nn.Module):
    def __init__(self, E, H, iterative):
        super().__init__()
        self.E, self.H, self.iterative = E, H, iterative
        self.query = nn.Parameter(torch.randn(E))
        self.in_proj = nn.Linear(E, 3 * E)
        self.out_proj = nn.Linear(E, E)

    def forward(self, x):
        B, L, E = x.shape
        H, d = self.H, E // self.H
        W, b = self.in_proj.weight, self.in_proj.bias
        q = (W[:E] @ self.query + b[:E]).view(H, d)
        k = (x @ W[E:2 * E].T + b[E:2 * E]).view(B, L, H, d).transpose(1, 2)
        v = (x @ W[2 * E:].T + b[2 * E:]).view(B, L, H, d).transpose(1, 2)
        s = (k * q[None, :, None, :]).sum(-1) / math.sqrt(d)
        if not self.iterative:
            o = aaren_scan(s, v)
        else:
            m = torch.full((B, H), -math.inf)
            c = torch.zeros(B, H)
            a = torch.zeros(B, H, d)
            outs = []
            for t in range(L):
                st = s[..., t]
                mn = torch.maximum(m, st)
                al, be = torch.exp(m - mn), torch.exp(st - mn)
                c = c * al + be
                a = a * al[..., None] + v[:, :, t] * be[..., None]
                m = mn
                outs.append(a / c[..., None])
            o = torch.stack(outs, 2)
        return self.out_proj(o.transpose(1, 2).reshape(B, L, E))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    # None: the workload's default (`defaults` below, else `base`).
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--heads", type=int, default=None)
    ap.add_argument("--len", type=int, default=None)
    ap.add_argument("--embed", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    base = {"batch": 4, "heads": 8, "len": 512, "embed": 512, "hidden": 64, "vocab": 20000}
    rnn = {"batch": 64, "len": 200, "embed": 50}
    defaults = {
        "bilstm-train-step": rnn,
        "bigru-train-step": rnn,
        "aaren-train-step": {"batch": 4, "heads": 4, "len": 4096, "embed": 256},
        "aaren-scan-train-step": {"batch": 4, "heads": 4, "len": 4096, "embed": 256},
    }.get(a.workload, {})
    for k, v in base.items():
        if getattr(a, k) is None:
            setattr(a, k, defaults.get(k, v))
    if a.causal and a.workload != "mha-train-step":
        raise SystemExit(f"--causal applies to mha-train-step only, not {a.workload}")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, H, L, E = a.batch, a.heads, a.len, a.embed
    shape = {"batch": B, "heads": H, "len": L, "embed": E}
    extra = {}
    if a.workload == "mha-forward":
        mha = nn.MultiheadAttention(E, H, batch_first=True)
        x = torch.rand(B, L, E)
        with torch.no_grad():
            times = timed(a.runs, lambda: mha(x, x, x, need_weights=True))
    elif a.workload == "mha-forward-fused":
        # need_weights=False is PyTorch's fused inference path (scaled_dot_product_attention).
        mha = nn.MultiheadAttention(E, H, batch_first=True).eval()
        x = torch.rand(B, L, E)
        with torch.inference_mode():
            times = timed(a.runs, lambda: mha(x, x, x, need_weights=False))
    elif a.workload == "mha-train-step":
        mha = nn.MultiheadAttention(E, H, batch_first=True)
        opt = torch.optim.Adam(mha.parameters(), lr=1e-4)
        x, y = torch.rand(B, L, E), torch.rand(B, L, E)
        # Boolean mask: True above the diagonal is a position not attended to.
        mask = torch.ones(L, L, dtype=torch.bool).triu(1) if a.causal else None

        def step():
            opt.zero_grad()
            out = mha(x, x, x, need_weights=True, attn_mask=mask, is_causal=False)[0]
            loss = ((out - y) ** 2).mean()
            loss.backward()
            opt.step()
        times = timed(a.runs, step)
        if a.causal:
            shape["causal"] = True
    elif a.workload in ("bilstm-train-step", "bigru-train-step"):
        V, Hd = a.vocab, a.hidden
        rnn_cls = nn.LSTM if a.workload == "bilstm-train-step" else nn.GRU
        emb = nn.Embedding(V, E)
        cell = rnn_cls(E, Hd, batch_first=True, bidirectional=True)
        head = nn.Linear(2 * Hd, 2)
        params = [*emb.parameters(), *cell.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=2e-3)
        loss_fn = nn.CrossEntropyLoss()
        # One batch of full-length sequences, reused every step (no packing).
        tokens = torch.randint(0, V, (B, L))
        labels = torch.randint(0, 2, (B,))

        def step():
            opt.zero_grad()
            h_n = cell(emb(tokens))[1]
            if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
                h_n = h_n[0]
            # The last layer's forward and backward final states, [B, 2*hidden].
            loss = loss_fn(head(torch.cat([h_n[-2], h_n[-1]], 1)), labels)
            loss.backward()
            opt.step()
        times = timed(a.runs, step)
        shape = {"batch": B, "len": L, "embed": E, "hidden": Hd, "vocab": V}
    elif a.workload == "aaren-train-step":
        layer = Aaren(E, H, iterative=False)  # the parallel path: aaren_scan
        opt = torch.optim.Adam(layer.parameters(), lr=1e-4)
        x, y = torch.rand(B, L, E), torch.rand(B, L, E)

        def step():
            opt.zero_grad()
            loss = ((layer(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        times = timed(a.runs, step)
    elif a.workload == "aaren-scan-train-step":
        s = torch.randn(B, H, L, requires_grad=True)
        v = torch.randn(B, H, L, E // H, requires_grad=True)
        r = torch.randn(B, H, L, E // H)

        def step():
            s.grad, v.grad = None, None
            (aaren_scan(s, v) * r).sum().backward()
        times = timed(a.runs, step)
    elif a.workload in ("aaren-parallel", "aaren-iterative", "aaren-fused"):
        # PyTorch has no fused form: the peer of `aaren-fused` is its scan.
        layer = Aaren(E, H, a.workload == "aaren-iterative")
        x = torch.rand(B, L, E)
        with torch.no_grad():
            times = timed(a.runs, lambda: layer(x))
    elif a.workload in ("aaren-scan-parallel", "aaren-scan-fused", "aaren-scan-iterative"):
        # The scan alone on materialised scores and values, as attnkit's workloads.
        s, v = torch.randn(B, H, L), torch.randn(B, H, L, E // H)
        if a.workload == "aaren-scan-iterative":
            def cell():
                m = torch.full((B, H), -math.inf)
                c, acc, outs = torch.zeros(B, H), torch.zeros(B, H, E // H), []
                for t in range(L):
                    mn = torch.maximum(m, s[..., t])
                    al, be = torch.exp(m - mn), torch.exp(s[..., t] - mn)
                    c = c * al + be
                    acc = acc * al[..., None] + v[:, :, t] * be[..., None]
                    m = mn
                    outs.append(acc / c[..., None])
                return torch.stack(outs, 2)
            fn = cell
        else:
            def fn():
                return aaren_scan(s, v)
        with torch.no_grad():
            times = timed(a.runs, fn)
    elif a.workload == "gemm":
        x, w = torch.rand(B * L, E), torch.rand(E, E)
        times = timed(a.runs, lambda: x @ w)
    elif a.workload == "sdpa-fused":
        q, k, v = (torch.rand(B, H, L, E // H) for _ in range(3))
        with torch.inference_mode():
            times = timed(a.runs, lambda: F.scaled_dot_product_attention(q, k, v))
    elif a.workload == "copy":
        src, dst = torch.rand(B * L * E), torch.rand(B * L * E)
        times = timed(a.runs, lambda: dst.copy_(src))
    elif a.workload == "kv-cache-decode":
        mha = nn.MultiheadAttention(E, H, batch_first=True)
        cache_k = torch.rand(1, L - 1, E)
        cache_v = torch.rand(1, L - 1, E)
        x = torch.rand(1, 1, E)
        W, b = mha.in_proj_weight, mha.in_proj_bias
        d = E // H

        def step():
            nonlocal cache_k, cache_v
            qkv = x @ W.T + b
            q, k, v = qkv.split(E, -1)
            cache_k = torch.cat([cache_k, k], 1)
            cache_v = torch.cat([cache_v, v], 1)
            qh = q.view(1, 1, H, d).transpose(1, 2)
            kh = cache_k.view(1, -1, H, d).transpose(1, 2)
            vh = cache_v.view(1, -1, H, d).transpose(1, 2)
            o = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(d), -1) @ vh
            return mha.out_proj(o.transpose(1, 2).reshape(1, 1, E))
        with torch.no_grad():
            times = timed(a.runs, step)
        extra["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        shape = {"batch": 1, "heads": H, "len": L, "embed": E}
    elif a.workload == "count-train":
        import importlib.util
        import pathlib
        spec = importlib.util.spec_from_file_location(
            "count", pathlib.Path(__file__).with_name("count_train_pytorch.py"))
        count = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(count)
        net = count.Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.005, momentum=0.9)
        gen = torch.Generator().manual_seed(0)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            x, y = count.sample(64, gen)
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        times = timed(a.runs, step)
        shape = {"batch": 64, "len": 7, "embed": 64, "heads": 4}
    else:
        raise SystemExit(f"unknown workload {a.workload}")
    times.sort()
    median = times[len(times) // 2]
    flop = {
        "mha-forward": 8 * B * L * E * E + 4 * B * L * L * E,
        "mha-forward-fused": 8 * B * L * E * E + 4 * B * L * L * E,
        "sdpa-fused": 4 * B * L * L * E,
        "aaren-parallel": 6 * B * L * E * E,
        "aaren-iterative": 6 * B * L * E * E,
        "aaren-fused": 6 * B * L * E * E,
        "gemm": 2 * B * L * E * E,
    }.get(a.workload)
    if flop:
        extra.update(gflop=flop / 1e9, gflops=flop / 1e6 / median)
    moved = {"aaren-scan-fused": 4 * (B * H * L + 2 * B * L * E), "copy": 8 * B * L * E}
    if a.workload in moved:
        extra.update(gbytes=moved[a.workload] / 1e9, gbps=moved[a.workload] / 1e6 / median)
    if a.workload in ("bilstm-train-step", "bigru-train-step"):
        extra["tokens_per_s"] = B * L / (median / 1e3)
    print(json.dumps({
        "workload": a.workload, "shape": shape, "threads": a.threads, "runs": a.runs,
        "median_ms": median, "min_ms": times[0], "max_ms": times[-1],
        "framework": f"torch {torch.__version__}", **extra,
    }))


if __name__ == "__main__":
    main()
