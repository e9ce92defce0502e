"""Runs `attnkit export` files in onnxruntime and compares them with independent oracles.

For every committed fixture of an exportable module (tools/fixtures/attention/<case>/,
written by PyTorch or by the numpy float64 definition), this script

1. exports the module with `attnkit export` (the case's config and weights),
2. checks the file with `onnx.checker.check_model(full_check=True)`,
3. runs it in onnxruntime on the case's inputs, and
4. compares every output with the fixture's expected values:
   |got - want| <= atol + rtol * |want| with atol 2e-4, rtol 2e-3 (the export
   acceptance bound), and reports the worst ratio also against the case's own
   (tighter) tolerance.

It also checks what the fixtures do not cover: the optional mask input (fed and left
out), the one-step Aaren model streamed token by token against the whole-sequence
output, dynamic batch and length on one file, and that a bad request writes no file.

It trains every sentiment model on a toy corpus (`attnkit train imdb --compare`),
exports each checkpoint and checks that onnxruntime gets the accuracy attnkit
reported. With --checkpoints DIR it also exports the counting networks the tour trained and
measures their accuracy in onnxruntime on all 279,936 possible sequences, with labels
computed here from the task's definition.

Usage: python tools/onnx_check.py [--attnkit target/release/attnkit] [--checkpoints DIR]
Needs: onnx, onnxruntime, numpy, safetensors (tools/requirements-onnx.txt).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tools", "fixtures", "attention")
EXPORTABLE = {"sdpa", "mha", "external", "aaren", "lstm", "gru", "rnn"}
ATOL, RTOL = 2e-4, 2e-3


def export(attnkit, module, config, weights, out, *extra):
    cmd = [attnkit, "export", "--module", module, "--config", config, "--out", out]
    if weights is not None:
        cmd += ["--weights", weights]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True)


def session(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    # The optional mask is an initializer listed as an input (an overridable default),
    # which onnxruntime reports as a warning on every load; it is intended.
    opts.log_severity_level = 3
    return model, ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def feedable(sess):
    names = [i.name for i in sess.get_inputs()]
    names += [i.name for i in sess.get_overridable_initializers()]
    return names


def ratio(got, want, atol, rtol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != {want.shape}")
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - want) / (atol + rtol * np.abs(want)), initial=0.0))


def check_fixtures(attnkit, tmp, failures):
    rows = []
    for case_name in sorted(os.listdir(FIXTURES)):
        d = os.path.join(FIXTURES, case_name)
        case_path = os.path.join(d, "case.json")
        if not os.path.exists(case_path):
            continue
        case = json.load(open(case_path))
        module = case["module"]
        if module not in EXPORTABLE:
            continue
        weights = os.path.join(d, "weights.safetensors")
        weights = weights if os.path.exists(weights) else None
        out = os.path.join(tmp, case_name + ".onnx")
        r = export(attnkit, module, json.dumps(case["config"]), weights, out)
        if r.returncode != 0:
            failures.append(f"{case_name}: export failed: {r.stderr.strip()}")
            continue
        _, sess = session(out)
        inputs = load_file(os.path.join(d, "input.safetensors"))
        expected = load_file(os.path.join(d, "expected.safetensors"))
        names = feedable(sess)
        feeds = {k: v for k, v in inputs.items() if k in names}
        outs = sess.run(None, feeds)
        by_name = dict(zip([o.name for o in sess.get_outputs()], outs))
        worst, worst_own = 0.0, 0.0
        for name, want in expected.items():
            worst = max(worst, ratio(by_name[name], want, ATOL, RTOL))
            own = case["tolerance"]
            worst_own = max(worst_own, ratio(by_name[name], want, own["atol"], own["rtol"]))
        length = max(v.shape[-2] if v.ndim >= 2 else 1 for v in inputs.values())
        rows.append((case_name, module, length, worst, worst_own, case["generator"]))
        if worst > 1.0:
            failures.append(f"{case_name}: {worst:.2f}x the tolerance")
    print(f"{'case':28} {'module':8} {'len':>5} {'x tol':>8} {'x own tol':>10}  oracle")
    for name, module, length, worst, own, gen in rows:
        print(f"{name:28} {module:8} {length:5d} {worst:8.4f} {own:10.4f}  {gen}")
    return len(rows)


def rand(rng, *shape, scale=1.0):
    return (rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def aaren_weights(rng, e, query_scale):
    return {
        "query": rand(rng, e, scale=query_scale),
        "in_proj_weight": rand(rng, 3 * e, e, scale=0.5),
        "in_proj_bias": rand(rng, 3 * e, scale=0.2),
        "out_proj.weight": rand(rng, e, e, scale=0.5),
        "out_proj.bias": rand(rng, e, scale=0.2),
    }


def aaren_oracle(w, x, mask, heads):
    """Float64 definition: causal softmax of the learned query over unmasked tokens."""
    e = x.shape[-1]
    dh = e // heads
    wq, wk, wv = np.split(w["in_proj_weight"].astype(np.float64), 3)
    bq, bk, bv = np.split(w["in_proj_bias"].astype(np.float64), 3)
    q = wq @ w["query"].astype(np.float64) + bq
    x = x.astype(np.float64)
    k = x @ wk.T + bk
    v = x @ wv.T + bv
    b, length, _ = x.shape
    y = np.zeros((b, length, e))
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        s = k[:, :, sl] @ q[sl] / np.sqrt(dh)  # [B, L]
        for bi in range(b):
            for t in range(length):
                keep = mask[bi, : t + 1] < 0.5
                if not keep.any():
                    continue
                st = s[bi, : t + 1][keep]
                p = np.exp(st - st.max())
                y[bi, t, sl] = (p / p.sum()) @ v[bi, : t + 1, sl][keep]
    return y @ w["out_proj.weight"].astype(np.float64).T + w["out_proj.bias"]


def check_extras(attnkit, tmp, failures):
    rng = np.random.default_rng(0)
    e, heads = 8, 2
    w = aaren_weights(rng, e, 3.0)
    wpath = os.path.join(tmp, "aaren_w.safetensors")
    save_file(w, wpath)
    results = []

    # Optional mask, fed and left out; dynamic batch and length on one file.
    for mode in ["iterative", "parallel"]:
        cfg = json.dumps({"embed_dim": e, "num_heads": heads, "mode": mode})
        out = os.path.join(tmp, f"aaren_{mode}.onnx")
        r = export(attnkit, "aaren", cfg, wpath, out)
        assert r.returncode == 0, r.stderr
        _, sess = session(out)
        for b, length in [(3, 7), (1, 40)]:
            x = rand(rng, b, length, e, scale=1.5)
            mask = np.zeros((b, length), np.float32)
            if b > 1:
                mask[1, -2:] = 1.0
                mask[2, :3] = 1.0
            fed = sess.run(None, {"x": x, "key_padding_mask": mask})[0]
            unfed = sess.run(None, {"x": x})[0]
            r1 = ratio(fed, aaren_oracle(w, x, mask, heads), ATOL, RTOL)
            r2 = ratio(unfed, aaren_oracle(w, x, np.zeros_like(mask), heads), ATOL, RTOL)
            results.append((f"aaren {mode} B{b} L{length} mask fed", r1))
            results.append((f"aaren {mode} B{b} L{length} mask left out", r2))

    # The one-step model streamed token by token.
    out = os.path.join(tmp, "aaren_step.onnx")
    cfg = json.dumps({"embed_dim": e, "num_heads": heads, "mode": "iterative"})
    r = export(attnkit, "aaren", cfg, wpath, out, "--step")
    assert r.returncode == 0, r.stderr
    _, sess = session(out)
    b, length = 2, 50
    x = rand(rng, b, length, e, scale=1.5)
    want = aaren_oracle(w, x, np.zeros((b, length)), heads)
    state = {
        "state_a": np.zeros((b, heads, e // heads), np.float32),
        "state_c": np.zeros((b, heads), np.float32),
        "state_m": np.full((b, heads), -np.inf, np.float32),
    }
    worst = 0.0
    for t in range(length):
        y, a, c, m = sess.run(None, {"x": x[:, t], **state})
        state = {"state_a": a, "state_c": c, "state_m": m}
        worst = max(worst, ratio(y, want[:, t], ATOL, RTOL))
    results.append((f"aaren --step streamed over {length} tokens", worst))

    # mha with the optional mask left out equals an all-zero mask.
    mw = {
        "in_proj_weight": rand(rng, 3 * e, e, scale=0.5),
        "in_proj_bias": rand(rng, 3 * e, scale=0.2),
        "out_proj.weight": rand(rng, e, e, scale=0.5),
        "out_proj.bias": rand(rng, e, scale=0.2),
    }
    mpath = os.path.join(tmp, "mha_w.safetensors")
    save_file(mw, mpath)
    out = os.path.join(tmp, "mha.onnx")
    r = export(attnkit, "mha", json.dumps({"embed_dim": e, "num_heads": heads}), mpath, out)
    assert r.returncode == 0, r.stderr
    _, sess = session(out)
    q = rand(rng, 2, 5, e)
    kv = rand(rng, 2, 6, e)
    a = sess.run(None, {"query": q, "key": kv, "value": kv})
    z = sess.run(None, {"query": q, "key": kv, "value": kv, "key_padding_mask": np.zeros((2, 6), np.float32)})
    results.append(("mha mask left out == zero mask", ratio(a[0], z[0], 1e-7, 0.0)))

    # A bad request fails and writes nothing.
    bad = os.path.join(tmp, "bad.onnx")
    r = export(attnkit, "lstm", json.dumps({"input_size": 3, "hidden_size": 2}), mpath, bad)
    ok = r.returncode != 0 and not os.path.exists(bad) and "weight_ih_l0" in r.stderr
    results.append(("bad weights: error names the tensor, no file", 0.0 if ok else float("inf")))

    for name, worst in results:
        print(f"{name:48} {worst:8.4f}")
        if not worst <= 1.0:
            failures.append(f"{name}: {worst}")
    return len(results)


def check_counting(attnkit, tmp, ckpt_dir, failures):
    """Trained counting networks: accuracy on every possible sequence, labels computed
    here from the task's definition (count of x minus count of y, offset by the
    length). The bar is the tour's: 99%."""
    rows = []
    for name in ["count-attention", "count-aaren"]:
        ckpt = os.path.join(ckpt_dir, name + ".ckpt")
        if not os.path.exists(ckpt):
            failures.append(f"{ckpt}: missing (run `attnkit tour --out {ckpt_dir}` first)")
            continue
        out = os.path.join(tmp, name + ".onnx")
        cmd = [attnkit, "export", "--checkpoint", ckpt, "--out", out]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{name}: export failed: {r.stderr.strip()}")
            continue
        model, sess = session(out)
        meta = {p.key: p.value for p in model.metadata_props}
        config = json.loads(meta["attnkit.config"])
        vocab, seq_len = config["vocab"], config["seq_len"]
        width = seq_len + 2
        grid = np.indices((vocab,) * width).reshape(width, -1).T.astype(np.int64)
        x, y, body = grid[:, :1], grid[:, 1:2], grid[:, 2:]
        labels = (body == x).sum(1) - (body == y).sum(1) + seq_len
        preds = np.concatenate(
            [sess.run(None, {"tokens": chunk})[0].argmax(1) for chunk in np.array_split(grid, 14)]
        )
        acc = float((preds == labels).mean())
        rows.append((name, len(grid), acc))
        if acc < 0.99:
            failures.append(f"{name}: accuracy {acc:.5f} < 0.99")
    for name, n, acc in rows:
        print(f"{name + '.onnx':28} all {n} sequences: accuracy {acc:.5f}")
    return len(rows)


def toy_imdb(root, rng):
    """A small separable corpus in the aclImdb layout, and a 4-d GloVe file."""
    filler = ["the", "movie", "plot", "actor", "was", "and", "a", "film", "story", "scene"]
    cues = {"pos": ["great", "wonderful", "superb"], "neg": ["awful", "boring", "dull"]}
    for part in ["train", "test"]:
        for label, words in cues.items():
            d = os.path.join(root, "aclImdb", part, label)
            os.makedirs(d, exist_ok=True)
            for i in range(60):
                n = int(rng.integers(3, 30))
                text = [filler[j] for j in rng.integers(0, len(filler), n)]
                for _ in range(2):
                    text.insert(int(rng.integers(0, len(text) + 1)), words[int(rng.integers(0, 3))])
                with open(os.path.join(d, f"{i}_7.txt"), "w") as f:
                    f.write(" ".join(text) + "<br />")
    with open(os.path.join(root, "glove.txt"), "w") as f:
        for w in filler + cues["pos"] + cues["neg"]:
            f.write(w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=4)) + "\n")


def check_sentiment(attnkit, tmp, failures):
    """Every sentiment model x {GloVe, one-hot} trained on a toy corpus by
    `attnkit train imdb --compare`, exported from its checkpoint, and run here on the
    test reviews (encoded with the run's imdb-vocab.txt): the accuracy onnxruntime
    gets must equal the one the run reported (allowing one review of difference for
    a near-tie between the two logits)."""
    rng = np.random.default_rng(1)
    data = os.path.join(tmp, "imdb")
    toy_imdb(data, rng)
    out = os.path.join(tmp, "imdb-run")
    summary = os.path.join(tmp, "imdb.json")
    max_len = 24
    cmd = [attnkit, "train", "imdb", "--compare", "--data", data, "--glove", "glove.txt",
           "--epochs", "4", "--hidden", "8", "--max-len", str(max_len), "--batch", "16",
           "--lr", "0.02", "--out", out, "--summary", summary, "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"train imdb --compare failed: {r.stderr.strip()}")
        return 0
    runs = json.load(open(summary))["runs"]
    vocab = {w: i for i, w in enumerate(open(os.path.join(out, "imdb-vocab.txt")).read().split("\n")[:-1])}
    reviews = []
    for label_name, label in [("neg", 0), ("pos", 1)]:
        d = os.path.join(data, "aclImdb", "test", label_name)
        for name in sorted(os.listdir(d)):
            tokens = open(os.path.join(d, name)).read().replace("<br />", " ").split()
            reviews.append((tokens, label))
    ids = np.zeros((len(reviews), max_len), np.int64)
    lengths = np.zeros(len(reviews), np.int64)
    for i, (tokens, _) in enumerate(reviews):
        tokens = tokens[:max_len]
        ids[i, : len(tokens)] = [vocab.get(t, 1) for t in tokens]
        lengths[i] = max(1, len(tokens))
    labels = np.array([label for _, label in reviews])
    for run in runs:
        name = f"imdb-{run['model']}-{run['embedding']}"
        path = os.path.join(tmp, name + ".onnx")
        r = subprocess.run([attnkit, "export", "--checkpoint", run["checkpoint"], "--out", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{name}: export failed: {r.stderr.strip()}")
            continue
        _, sess = session(path)
        logits = sess.run(None, {"ids": ids, "lengths": lengths})[0]
        acc = float((logits.argmax(1) == labels).mean())
        diff = abs(acc - run["eval_accuracy"]) * len(labels)
        print(f"{name + '.onnx':28} test accuracy {acc:.4f} (attnkit: {run['eval_accuracy']:.4f})")
        if diff > 1.0 + 1e-9:
            failures.append(f"{name}: onnxruntime {acc} vs attnkit {run['eval_accuracy']}")
    return len(runs)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attnkit", default=os.path.join(ROOT, "target", "release", "attnkit"))
    p.add_argument(
        "--checkpoints",
        help="a folder with count-attention.ckpt and count-aaren.ckpt (as `attnkit tour "
        "--out DIR` writes): export them and measure accuracy in onnxruntime",
    )
    args = p.parse_args()
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        n = check_fixtures(args.attnkit, tmp, failures)
        m = check_extras(args.attnkit, tmp, failures)
        m += check_sentiment(args.attnkit, tmp, failures)
        if args.checkpoints:
            m += check_counting(args.attnkit, tmp, args.checkpoints, failures)
    if failures:
        print(f"FAILED ({len(failures)}):", *failures, sep="\n  ")
        sys.exit(1)
    print(f"ok: {n} fixture cases and {m} extra checks within atol {ATOL}, rtol {RTOL}")


if __name__ == "__main__":
    main()
