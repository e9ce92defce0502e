#!/usr/bin/env python3
"""Scores speech enhancement on a folder of pairs: noisy, RNNoise, and attnkit models.

    .venv-speech/bin/python tools/enhance_check.py --pairs attnkit-data/speech/test \
        --attnkit target/release/attnkit --model aaren=built-in --model gru=DIR/enhance-gru.safetensors \
        --out target/enhance-check

--pairs DIR holds clean/ and noisy/ with the same file names (and optionally
mixtures.tsv: file, snr_db, ... as `attnkit data prepare-speech` writes it). For every
system it scores each file with SI-SDR (numpy, float64), PESQ-WB (PyPI `pesq`, the ITU
reference code) and STOI (PyPI `pystoi`), and prints means overall and per SNR.

RNNoise: the pretrained model of PyPI `pyrnnoise` (its bundled librnnoise), at its own
48 kHz: input resampled 16 → 48 kHz (scipy resample_poly), 480-sample frames, output
back to 16 kHz; its delay (measured by cross-correlation with the input on the first
file, one value for all files) is removed so that the output is sample-aligned, as
attnkit's is.

attnkit models run through `attnkit enhance --input noisy --output ... --reference clean
--report ...` (`built-in` = no --checkpoint); the PESQ-WB and SI-SDR that report gives
(the pure-Rust `pesq` crate, attnkit's SI-SDR) are cross-checked against this script's
per file, and the largest differences printed.
"""
import argparse
import ctypes
import json
import pathlib
import subprocess
import sys
import wave

import numpy as np


def read(path):
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    if rate != 16000:
        sys.exit(f"error: {path}: {rate} Hz, expected 16000")
    return x


def write(path, x):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes())


def si_sdr(est, ref):
    est = est - est.mean()
    ref = ref - ref.mean()
    alpha = np.dot(est, ref) / np.dot(ref, ref)
    target = alpha * ref
    return 10 * np.log10(np.sum(target**2) / np.sum((target - est) ** 2))


class Rnnoise:
    def __init__(self):
        import pyrnnoise.rnnoise as rn

        self.lib = rn.lib
        self.frame = rn.FRAME_SIZE

    def raw(self, x16):
        """RNNoise output at 16 kHz, not yet delay-compensated."""
        from scipy.signal import resample_poly

        x48 = resample_poly(x16, 3, 1) * 32768.0
        n = self.frame
        pad = (-len(x48)) % n
        x48 = np.concatenate([x48, np.zeros(pad + 2 * n)]).astype(np.float32)
        out = np.zeros_like(x48)
        state = self.lib.rnnoise_create(None)
        buf_in = (ctypes.c_float * n)()
        buf_out = (ctypes.c_float * n)()
        for i in range(0, len(x48), n):
            buf_in[:] = x48[i : i + n]
            self.lib.rnnoise_process_frame(state, buf_out, buf_in)
            out[i : i + n] = np.frombuffer(buf_out, dtype=np.float32)
        self.lib.rnnoise_destroy(state)
        return resample_poly(out / 32768.0, 1, 3)

    def delay(self, x16):
        y = self.raw(x16)
        lags = range(0, 1000)
        scores = [np.dot(y[lag : lag + len(x16) - 1000], x16[: len(x16) - 1000]) for lag in lags]
        return int(np.argmax(scores))

    def __call__(self, x16, delay):
        return self.raw(x16)[delay : delay + len(x16)]


def scores(est, ref):
    from pesq import pesq
    from pystoi import stoi

    return {
        "si_sdr": float(si_sdr(est, ref)),
        "pesq_wb": float(pesq(16000, ref, est, "wb")),
        "stoi": float(stoi(ref, est, 16000, extended=False)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=pathlib.Path, required=True)
    ap.add_argument("--attnkit", type=pathlib.Path, default=pathlib.Path("target/release/attnkit"))
    ap.add_argument("--model", action="append", default=[], help="LABEL=PATH or LABEL=built-in")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("target/enhance-check"))
    ap.add_argument("--limit", type=int, default=0, help="score only the first N files")
    ap.add_argument("--json", type=pathlib.Path, help="write the table here")
    args = ap.parse_args()
    names = sorted(p.name for p in (args.pairs / "noisy").glob("*.wav"))
    if args.limit:
        names = names[: args.limit]
    snr = {}
    table = args.pairs / "mixtures.tsv"
    if table.exists():
        for line in table.read_text().splitlines()[1:]:
            f, s, *_ = line.split("\t")
            snr[f] = round(float(s))
    clean = {n: read(args.pairs / "clean" / n) for n in names}
    noisy = {n: read(args.pairs / "noisy" / n) for n in names}
    systems = {"noisy": noisy}
    rn = Rnnoise()
    delay = rn.delay(noisy[names[0]])
    print(f"RNNoise delay: {delay} samples at 16 kHz (removed)", file=sys.stderr)
    systems["rnnoise"] = {n: rn(noisy[n], delay) for n in names}
    for n in names:
        write(args.out / "rnnoise" / n, systems["rnnoise"][n])
    rust_reports = {}
    for spec in args.model:
        label, _, path = spec.partition("=")
        subset = args.out / "input"
        for n in names:
            write(subset / n, noisy[n])
            write(args.out / "clean" / n, clean[n])
        report = args.out / f"{label}.json"
        cmd = [str(args.attnkit), "enhance", "--input", str(subset), "--output", str(args.out / label),
               "--reference", str(args.out / "clean"), "--report", str(report)]
        if path != "built-in":
            cmd += ["--checkpoint", path]
        subprocess.run(cmd, check=True)
        systems[label] = {n: read(args.out / label / n) for n in names}
        rust_reports[label] = {r["file"]: r for r in json.loads(report.read_text())["per_file"]}
    result = {}
    for label, outputs in systems.items():
        per = {n: scores(outputs[n], clean[n]) for n in names}
        result[label] = per
    print("\n| system | SI-SDR (dB) | PESQ-WB | STOI |" + "".join(f" SI-SDR {s} dB |" for s in sorted(set(snr.values()))))
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(set(snr.values())))
    summary = {}
    for label, per in result.items():
        mean = {k: float(np.mean([per[n][k] for n in names])) for k in ("si_sdr", "pesq_wb", "stoi")}
        by_snr = {s: float(np.mean([per[n]["si_sdr"] for n in names if snr.get(n) == s])) for s in sorted(set(snr.values()))}
        summary[label] = {"mean": mean, "si_sdr_by_snr": by_snr}
        print(f"| {label} | {mean['si_sdr']:.2f} | {mean['pesq_wb']:.3f} | {mean['stoi']:.3f} |"
              + "".join(f" {v:.2f} |" for v in by_snr.values()))
    for label, rust in rust_reports.items():
        dp = [abs(rust[n]["enhanced"]["pesq_wb"] - result[label][n]["pesq_wb"]) for n in names]
        dpn = [abs(rust[n]["noisy"]["pesq_wb"] - result["noisy"][n]["pesq_wb"]) for n in names]
        ds = [abs(rust[n]["enhanced"]["si_sdr"] - result[label][n]["si_sdr"]) for n in names]
        print(f"{label}: Rust `pesq` crate vs PyPI pesq, PESQ-WB |Δ| max {max(dp + dpn):.4f}, mean "
              f"{np.mean(dp + dpn):.4f} over {2 * len(names)} signals; SI-SDR |Δ| max {max(ds):.2e} dB",
              file=sys.stderr)
        summary[label]["cross_check"] = {"pesq_wb_max_abs_diff": max(dp + dpn), "pesq_wb_mean_abs_diff": float(np.mean(dp + dpn)),
                                         "si_sdr_max_abs_diff": max(ds)}
    summary["files"] = len(names)
    summary["rnnoise_delay_samples"] = delay
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
