#!/usr/bin/env python3
"""Checks that the README's two commands share one build.

`cargo run --release -- tour` and `cargo test --release --workspace` resolve features
separately: a test-only dependency that turns on a feature of a crate Burn uses makes
cargo build that crate (and everything above it, Burn included) a second time. This
script asks cargo for both unit graphs (no compiling) and fails, naming the crate and
the two feature sets, if any unit of the first build is missing from the second. The
fix is a line in crates/attnkit-cli/Cargo.toml's feature-alignment block.

Usage: python3 tools/check_one_build.py   (from the repository root)
"""
import json
import os
import subprocess
import sys


def unit_graph(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")  # --unit-graph is unstable
    out = subprocess.run(
        ["cargo", *args, "--release", "--unit-graph", "-Z", "unstable-options"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    units = {}
    for u in json.loads(out)["units"]:
        if u["mode"] != "build":
            continue
        key = (u["pkg_id"], u["target"]["name"], u["platform"])
        units.setdefault(key, set()).add(
            (tuple(sorted(u["features"])), json.dumps(u["profile"], sort_keys=True)))
    return units


def main():
    run = unit_graph(["build"])
    test = unit_graph(["test", "--workspace", "--no-run"])
    problems = []
    for key, variants in sorted(run.items()):
        for features, profile in variants:
            if (features, profile) not in test.get(key, set()):
                got = sorted(f for f, _ in test.get(key, set()))
                problems.append(f"{key[0]} ({key[1]}): tour build features {list(features)}, "
                                f"test build {got or 'absent'}")
    compared = sum(len(v) for v in run.values())
    if problems:
        print(f"{len(problems)} of {compared} units of `cargo run --release` are built "
              "differently by `cargo test --release --workspace`:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"one build: all {compared} units of `cargo run --release` are reused by "
          "`cargo test --release --workspace`")


if __name__ == "__main__":
    main()
