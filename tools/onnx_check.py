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

A fixture without a mask is run twice for sdpa, mha and aaren: the default export
(its `key_padding_mask` input fed zeros) and the `--no-mask` export (no mask input);
both must match the oracle and each other exactly.

Every file loaded must list each input in `get_inputs()` (no input that is also an
initializer, which onnxruntime hides and warns about), and onnxruntime must log no
warning about an initializer among the graph inputs while loading it.

It also checks what the fixtures do not cover: masks fed against zeros and against
`--no-mask`, the one-step Aaren model streamed token by token against the
whole-sequence output, dynamic batch and length on one file, and that a bad request
writes no file.

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
# Modules whose export takes `key_padding_mask` (unless exported with --no-mask).
MASKED = {"sdpa", "mha", "aaren"}
ATOL, RTOL = 2e-4, 2e-3


def export(attnkit, module, config, weights, out, *extra):
    cmd = [attnkit, "export", "--module", module, "--config", config, "--out", out]
    if weights is not None:
        cmd += ["--weights", weights]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True)


# Problems found while loading files: inputs that are initializers, onnxruntime's
# warning about them. Filled by session(), reported by main().
LOADED = {"files": 0, "problems": []}
INITIALIZER_WARNING = "appears in graph inputs"


class CapturedStderr:
    """Collects what native code writes to file descriptor 2 (onnxruntime logs there,
    bypassing sys.stderr)."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        return False


def session(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    name = os.path.basename(path)
    LOADED["files"] += 1
    g = model.graph
    shared = sorted({i.name for i in g.input} & {t.name for t in g.initializer})
    if shared:
        LOADED["problems"].append(f"{name}: inputs that are also initializers: {shared}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 2  # warnings and errors
    with CapturedStderr() as log:
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    if log.text.strip():
        print(log.text, end="", file=sys.stderr)
    if INITIALIZER_WARNING in log.text:
        LOADED["problems"].append(f"{name}: onnxruntime warned: an initializer {INITIALIZER_WARNING}")
    hidden = [i.name for i in sess.get_overridable_initializers()]
    if hidden:
        LOADED["problems"].append(f"{name}: inputs hidden from get_inputs(): {hidden}")
    return model, sess


def input_names(sess):
    return [i.name for i in sess.get_inputs()]


def with_zero_mask(sess, feeds):
    """`feeds` plus an all-zero `key_padding_mask` (nothing masked) when the model takes
    one and `feeds` has none, its dimensions read off the other inputs by name."""
    if "key_padding_mask" not in input_names(sess) or "key_padding_mask" in feeds:
        return feeds
    sizes = {}
    for i in sess.get_inputs():
        if i.name in feeds:
            for dim, n in zip(i.shape, feeds[i.name].shape):
                if isinstance(dim, str):
                    sizes[dim] = n
    (mask,) = [i for i in sess.get_inputs() if i.name == "key_padding_mask"]
    shape = tuple(sizes[d] for d in mask.shape)
    return {**feeds, "key_padding_mask": np.zeros(shape, np.float32)}


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
        names = input_names(sess)
        if module in MASKED and "key_padding_mask" not in names:
            failures.append(f"{case_name}: key_padding_mask not in get_inputs() ({names})")
            continue
        feeds = with_zero_mask(sess, {k: v for k, v in inputs.items() if k in names})
        by_name = run(sess, feeds)
        length = max(v.shape[-2] if v.ndim >= 2 else 1 for v in inputs.values())
        variants = [(case_name, by_name)]
        if module in MASKED and "key_padding_mask" not in inputs:
            # No padding in this case: the --no-mask export must give the same values.
            out = os.path.join(tmp, case_name + "-no-mask.onnx")
            r = export(attnkit, module, json.dumps(case["config"]), weights, out, "--no-mask")
            if r.returncode != 0:
                failures.append(f"{case_name} --no-mask: export failed: {r.stderr.strip()}")
                continue
            _, sess = session(out)
            if "key_padding_mask" in input_names(sess):
                failures.append(f"{case_name} --no-mask: the file still has key_padding_mask")
            unmasked = run(sess, {k: v for k, v in inputs.items() if k in input_names(sess)})
            for name in expected:
                diff = float(np.max(np.abs(unmasked[name] - by_name[name]), initial=0.0))
                if diff != 0.0:
                    failures.append(f"{case_name}: `{name}` with zero mask vs --no-mask differs by {diff}")
            variants.append((case_name + " --no-mask", unmasked))
        for label, outs in variants:
            worst, worst_own = 0.0, 0.0
            for name, want in expected.items():
                worst = max(worst, ratio(outs[name], want, ATOL, RTOL))
                own = case["tolerance"]
                worst_own = max(worst_own, ratio(outs[name], want, own["atol"], own["rtol"]))
            rows.append((label, module, length, worst, worst_own, case["generator"]))
            if worst > 1.0:
                failures.append(f"{label}: {worst:.2f}x the tolerance")
    print(f"{'case':38} {'module':8} {'len':>5} {'x tol':>8} {'x own tol':>10}  oracle")
    for name, module, length, worst, own, gen in rows:
        print(f"{name:38} {module:8} {length:5d} {worst:8.4f} {own:10.4f}  {gen}")
    worst = max(rows, key=lambda r: r[3])
    print(f"worst: {worst[0]} at {worst[3]:.4f}x atol {ATOL}, rtol {RTOL}")
    cases = len({r[0].removesuffix(" --no-mask") for r in rows})
    return cases, len(rows)


def run(sess, feeds):
    outs = sess.run(None, feeds)
    return dict(zip([o.name for o in sess.get_outputs()], outs))


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

    # A padding mask, a zero mask, and the --no-mask file; dynamic batch and length
    # on one file.
    for mode in ["iterative", "parallel"]:
        cfg = json.dumps({"embed_dim": e, "num_heads": heads, "mode": mode})
        out = os.path.join(tmp, f"aaren_{mode}.onnx")
        r = export(attnkit, "aaren", cfg, wpath, out)
        assert r.returncode == 0, r.stderr
        _, sess = session(out)
        out = os.path.join(tmp, f"aaren_{mode}_no_mask.onnx")
        r = export(attnkit, "aaren", cfg, wpath, out, "--no-mask")
        assert r.returncode == 0, r.stderr
        _, plain = session(out)
        names = (input_names(sess), input_names(plain))
        ok = names == (["x", "key_padding_mask"], ["x"])
        results.append((f"aaren {mode}: inputs {names[0]}, --no-mask {names[1]}", 0.0 if ok else float("inf")))
        for b, length in [(3, 7), (1, 40)]:
            x = rand(rng, b, length, e, scale=1.5)
            mask = np.zeros((b, length), np.float32)
            if b > 1:
                mask[1, -2:] = 1.0
                mask[2, :3] = 1.0
            fed = sess.run(None, {"x": x, "key_padding_mask": mask})[0]
            zeros = sess.run(None, {"x": x, "key_padding_mask": np.zeros_like(mask)})[0]
            unmasked = plain.run(None, {"x": x})[0]
            r1 = ratio(fed, aaren_oracle(w, x, mask, heads), ATOL, RTOL)
            r2 = ratio(zeros, aaren_oracle(w, x, np.zeros_like(mask), heads), ATOL, RTOL)
            results.append((f"aaren {mode} B{b} L{length} padding mask", r1))
            results.append((f"aaren {mode} B{b} L{length} zero mask", r2))
            results.append((f"aaren {mode} B{b} L{length} --no-mask == zero mask", exact(unmasked, zeros)))

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

    # mha: a zero mask equals the --no-mask file, and a padding mask differs from it.
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
    plain_out = os.path.join(tmp, "mha_no_mask.onnx")
    r = export(attnkit, "mha", json.dumps({"embed_dim": e, "num_heads": heads}), mpath, plain_out, "--no-mask")
    assert r.returncode == 0, r.stderr
    _, plain = session(plain_out)
    names = (input_names(sess), input_names(plain))
    ok = names == (["query", "key", "value", "key_padding_mask"], ["query", "key", "value"])
    results.append((f"mha: inputs {names[0]}, --no-mask {names[1]}", 0.0 if ok else float("inf")))
    q = rand(rng, 2, 5, e)
    kv = rand(rng, 2, 6, e)
    a = plain.run(None, {"query": q, "key": kv, "value": kv})
    z = sess.run(None, {"query": q, "key": kv, "value": kv, "key_padding_mask": np.zeros((2, 6), np.float32)})
    results.append(("mha --no-mask == zero mask (output, weights)", max(exact(a[0], z[0]), exact(a[1], z[1]))))
    pad = np.zeros((2, 6), np.float32)
    pad[1, -2:] = 1.0
    p = sess.run(None, {"query": q, "key": kv, "value": kv, "key_padding_mask": pad})
    # Padded keys get weight 0 (exactly: exp of -inf), the unpadded row is unchanged.
    ok = np.all(p[1][1, :, -2:] == 0.0) and np.array_equal(p[0][0], z[0][0])
    results.append(("mha padding mask: padded keys weigh 0", 0.0 if ok else float("inf")))

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


def exact(got, want):
    """0.0 when the two arrays are bitwise equal, infinity otherwise (a check row)."""
    return 0.0 if np.array_equal(got, want) else float("inf")


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
    `attnkit train imdb --compare`, exported from the checkpoint of its best validation
    epoch, and run here on the test reviews (encoded with the run's imdb-vocab.txt,
    truncated as the run's config says): the accuracy onnxruntime
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
    labels = np.array([label for _, label in reviews])

    def encode(keep):
        # As the run encoded them: the first or the last max_len tokens of longer reviews.
        ids = np.zeros((len(reviews), max_len), np.int64)
        lengths = np.zeros(len(reviews), np.int64)
        for i, (tokens, _) in enumerate(reviews):
            tokens = tokens[-max_len:] if keep == "last" else tokens[:max_len]
            ids[i, : len(tokens)] = [vocab.get(t, 1) for t in tokens]
            lengths[i] = max(1, len(tokens))
        return ids, lengths

    for run in runs:
        name = f"imdb-{run['model']}-{run['embedding']}"
        path = os.path.join(tmp, name + ".onnx")
        ids, lengths = encode(run["config"].get("keep", "first"))
        # The reported accuracy is that of the best validation epoch's network.
        ckpt = run.get("best_checkpoint") or run["checkpoint"]
        r = subprocess.run([attnkit, "export", "--checkpoint", ckpt, "--out", path],
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


def check_enhancer(attnkit, tmp, failures):
    """The built-in speech enhancer exported as its one-frame cell (`attnkit export
    --enhancer built-in`), run here frame by frame in onnxruntime inside an STFT written
    in numpy (20 ms periodic sqrt-Hann frames every 10 ms, 10 ms of zeros before the
    signal, overlap-add): its waveform must equal `attnkit enhance` (file mode) on the
    shipped example mixture within 2 LSB of 16-bit audio. Returns 1."""
    import wave

    out = os.path.join(tmp, "enhance-step.onnx")
    r = subprocess.run([attnkit, "export", "--enhancer", "built-in", "--out", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    model, sess = session(out)
    noisy_path = os.path.join(ROOT, "crates", "attnkit-cli", "assets", "enhance-example-noisy.wav")
    rust_path = os.path.join(tmp, "enhanced.wav")
    r = subprocess.run([attnkit, "enhance", "--input", noisy_path, "--output", rust_path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def read(path):
        with wave.open(path) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0

    x, rust = read(noisy_path), read(rust_path)
    n, hop = 320, 160
    window = np.sin(np.pi * np.arange(n) / n)
    blocks = -(-len(x) // hop)
    padded = np.zeros(hop * (blocks + 2))
    padded[hop:hop + len(x)] = x
    states = {}
    for i in sess.get_inputs()[1:]:
        shape = [1 if isinstance(d, str) else d for d in i.shape]
        states[i.name] = np.full(shape, -np.inf if i.name.startswith("state_m") else 0.0, np.float32)
    outputs = [o.name for o in sess.get_outputs()]
    y = np.zeros_like(padded)
    for t in range(blocks + 1):
        spectrum = np.fft.rfft(padded[t * hop:t * hop + n] * window)
        features = ((np.log10(np.abs(spectrum) ** 2 + 1e-10) + 5) / 3).astype(np.float32)[None]
        result = dict(zip(outputs, sess.run(None, {"features": features, **states})))
        states = {k: result["next_" + k] for k in states}
        y[t * hop:t * hop + n] += np.fft.irfft(spectrum * result["gains"][0], n) * window
    y = y[hop:hop + len(x)]
    lsb = np.max(np.abs(np.round(y * 32768) - np.round(rust * 32768)))
    print(f"enhance-step.onnx: {blocks + 1} frames through onnxruntime in a numpy STFT vs "
          f"`attnkit enhance`: max {lsb:.0f} LSB")
    if not lsb <= 2:
        failures.append(f"enhancer cell: {lsb} LSB from attnkit enhance")
    return 1


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
        n, runs = check_fixtures(args.attnkit, tmp, failures)
        m = check_extras(args.attnkit, tmp, failures)
        m += check_sentiment(args.attnkit, tmp, failures)
        m += check_enhancer(args.attnkit, tmp, failures)
        if args.checkpoints:
            m += check_counting(args.attnkit, tmp, args.checkpoints, failures)
    print(f"{LOADED['files']} files loaded: "
          + (f"{len(LOADED['problems'])} with inputs that are initializers" if LOADED["problems"]
             else "every input in get_inputs(), none an initializer, no onnxruntime warning about one"))
    failures += LOADED["problems"]
    if failures:
        print(f"FAILED ({len(failures)}):", *failures, sep="\n  ")
        sys.exit(1)
    print(f"ok: {n} fixture cases ({runs} runs, with and without the mask input) and {m} extra "
          f"checks within atol {ATOL}, rtol {RTOL}")


if __name__ == "__main__":
    main()
