#!/usr/bin/env python3
"""Cross-checks `attnkit forward` against PyTorch on freshly drawn random cases.

Unlike the committed fixtures, every run draws new shapes, seeds, masks and input
magnitudes (up to logits of ~1e4), writes them to a temporary folder, runs the
`attnkit` binary, and compares with PyTorch at atol 1e-4, rtol 1e-3 (the acceptance
tolerance). Prints one line per case and exits non-zero on any mismatch.

Usage: python tools/cross_check_forward.py [--cases N] [--seed S] [--bin target/release/attnkit]
Needs torch, numpy and safetensors.
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import safetensors.numpy
import torch
import torch.nn.functional as F

ATOL, RTOL = 1e-4, 1e-3


def save(path, tensors):
    safetensors.numpy.save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path))


PRECISION = "f64"


def run_forward(binary, module, config, weights, inputs, tmp):
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps(config))
    inp, out = tmp / "input.safetensors", tmp / "output.safetensors"
    save(inp, inputs)
    cmd = [binary, "forward", "--module", module, "--config", str(cfg), "--input", str(inp), "--output", str(out),
           "--precision", PRECISION]
    if weights is not None:
        w = tmp / "weights.safetensors"
        save(w, weights)
        cmd += ["--weights", str(w)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return safetensors.numpy.load_file(str(out))


def compare(got, want):
    worst = 0.0
    for name, w in want.items():
        g = got[name]
        if g.shape != w.shape:
            return float("inf"), f"{name}: shape {g.shape} != {w.shape}"
        ratio = np.max(np.abs(g - w) / (ATOL + RTOL * np.abs(w)))
        worst = max(worst, float(ratio))
    return worst, ""


def random_padding(rng, B, L):
    mask = torch.from_numpy(rng.random((B, L)) < 0.3)
    mask[:, 0] = False  # keep one key per row: PyTorch returns NaN for fully masked rows
    return mask


def mha_case(rng, binary, tmp):
    H = int(rng.choice([1, 2, 4, 8]))
    E = H * int(rng.choice([2, 4, 8]))
    B, Lq = int(rng.integers(1, 4)), int(rng.integers(1, 40))
    cross = bool(rng.random() < 0.5)
    Lk = int(rng.integers(1, 40)) if cross else Lq
    scale = float(rng.choice([1.0, 10.0, 30.0]))
    torch.manual_seed(int(rng.integers(1 << 31)))
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    q = torch.randn(B, Lq, E) * scale
    k = torch.randn(B, Lk, E) * scale if cross else q
    v = torch.randn(B, Lk, E) * scale if cross else q
    inputs = {"query": q.numpy(), "key": k.numpy(), "value": v.numpy()}
    kpm = None
    if rng.random() < 0.6:
        kpm = random_padding(rng, B, Lk)
        inputs["key_padding_mask"] = kpm.float().numpy()
    with torch.no_grad():
        out, w = mha(q, k, v, key_padding_mask=kpm)
    got = run_forward(binary, "mha", {"embed_dim": E, "num_heads": H},
                      {n: p.numpy() for n, p in mha.state_dict().items()}, inputs, tmp)
    desc = f"mha B={B} Lq={Lq} Lk={Lk} E={E} H={H} x{scale:g} pad={kpm is not None}"
    return desc, compare(got, {"output": out.numpy(), "weights": w.numpy()})


def sdpa_case(rng, binary, tmp):
    B, H = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    Lq, Lk = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    D, Dv = int(rng.integers(1, 17)), int(rng.integers(1, 17))
    causal = bool(rng.random() < 0.5)
    if causal:
        Lk = max(Lk, Lq)  # every query keeps key 0
    scale_in = float(rng.choice([1.0, 10.0, 50.0]))
    scale = None if rng.random() < 0.7 else float(rng.uniform(0.05, 2.0))
    g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    q = torch.randn(B, H, Lq, D, generator=g) * scale_in
    k = torch.randn(B, H, Lk, D, generator=g) * scale_in
    v = torch.randn(B, H, Lk, Dv, generator=g)
    allowed = torch.ones(B, 1, Lq, Lk, dtype=torch.bool)
    if causal:
        allowed &= torch.ones(Lq, Lk, dtype=torch.bool).tril()
    inputs = {"query": q.numpy(), "key": k.numpy(), "value": v.numpy()}
    pad = rng.random() < 0.5
    if pad:
        kpm = random_padding(rng, B, Lk)
        inputs["key_padding_mask"] = kpm.float().numpy()
        allowed &= ~kpm[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    s = q.double() @ k.double().transpose(-1, -2) * (scale if scale is not None else 1 / math.sqrt(D))
    w = torch.softmax(s.masked_fill(~allowed, float("-inf")), -1).float()
    config = {"causal": causal}
    if scale is not None:
        config["scale"] = scale
    got = run_forward(binary, "sdpa", config, None, inputs, tmp)
    desc = f"sdpa B={B} H={H} Lq={Lq} Lk={Lk} D={D} Dv={Dv} causal={causal} x{scale_in:g} pad={pad}"
    return desc, compare(got, {"output": out.numpy(), "weights": w.numpy()})


def external_case(rng, binary, tmp):
    B, N, d, S = int(rng.integers(1, 4)), int(rng.integers(1, 60)), int(rng.integers(1, 33)), int(rng.integers(1, 65))
    x = torch.randn(B, N, d) * float(rng.choice([1.0, 10.0]))
    mk, mv = torch.randn(S, d) * 0.3, torch.randn(d, S) * 0.3
    a = torch.softmax(x.double() @ mk.double().T, dim=1)
    a = a / a.sum(dim=2, keepdim=True)
    out = (a @ mv.double().T).float()
    got = run_forward(binary, "external", {"d_model": d, "memory": S},
                      {"mk.weight": mk.numpy(), "mv.weight": mv.numpy()}, {"x": x.numpy()}, tmp)
    return f"external B={B} N={N} d={d} S={S}", compare(got, {"output": out.numpy()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default="target/release/attnkit")
    ap.add_argument("--precision", default="f64", choices=["f32", "f64"])
    ap.add_argument("--reference", default="f32", choices=["f32", "f64"],
                    help="run PyTorch in float32 (as users do) or float64 (the exact answer)")
    args = ap.parse_args()
    global PRECISION, REFERENCE
    PRECISION, REFERENCE = args.precision, args.reference
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % (1 << 32))
    rng = np.random.default_rng(seed)
    print(f"seed {seed}, torch {torch.__version__}, atol {ATOL}, rtol {RTOL}")
    failures = 0
    kinds = [mha_case, sdpa_case, external_case]
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.cases):
            desc, (worst, why) = kinds[i % len(kinds)](rng, args.bin, Path(d))
            ok = worst <= 1.0
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {desc}: worst {worst * 100:.1f}% of tolerance {why}")
    print(f"{args.cases - failures}/{args.cases} cases within tolerance")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
