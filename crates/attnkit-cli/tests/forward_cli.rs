//! `attnkit forward` as a user runs it: on PyTorch fixtures, and on every kind of bad
//! input (which must exit non-zero with one line naming the problem and write nothing).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attnkit::store::TensorStore;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
}

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/fixtures/attention")
        .join(case)
}

/// A scratch folder, removed when dropped.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("attnkit-cli-{tag}-"))
        .tempdir()
        .unwrap()
}

fn forward(
    module: &str,
    config: &str,
    weights: Option<&Path>,
    input: &Path,
    output: &Path,
) -> Output {
    let mut cmd = bin();
    cmd.args(["forward", "--module", module, "--config", config]);
    if let Some(w) = weights {
        cmd.arg("--weights").arg(w);
    }
    cmd.arg("--input").arg(input).arg("--output").arg(output);
    cmd.output().unwrap()
}

/// Runs a fixture case through the binary and checks every output within atol 1e-5,
/// rtol 1e-4 (the fixtures' tolerances).
fn run_fixture(case: &str) {
    let dir = fixture(case);
    let out_dir = scratch(case);
    let out = out_dir.path().join("out.safetensors");
    let weights = dir.join("weights.safetensors");
    let module = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(dir.join("case.json")).unwrap(),
    )
    .unwrap()["module"]
        .as_str()
        .unwrap()
        .to_string();
    let r = forward(
        &module,
        dir.join("config.json").to_str().unwrap(),
        weights.exists().then_some(weights.as_path()),
        &dir.join("input.safetensors"),
        &out,
    );
    assert!(
        r.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        r.stderr.is_empty(),
        "{case}: unexpected warnings {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let got = TensorStore::load(&out).unwrap();
    let want = TensorStore::load(&dir.join("expected.safetensors")).unwrap();
    for name in want.names() {
        let (g, w) = (got.require(name).unwrap(), want.require(name).unwrap());
        assert_eq!(g.shape, w.shape, "{case}: {name}");
        for (a, b) in g.data.iter().zip(&w.data) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{case}: {name}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn reproduces_pytorch_fixtures() {
    for case in [
        "mha_self",
        "mha_cross",
        "mha_padding",
        "mha_large_inputs",
        "sdpa_plain",
        "sdpa_causal",
        "sdpa_causal_rect",
        "sdpa_padding_scale",
        "sdpa_large_logits",
        "external",
        "external_large",
        "lstm_bidirectional_2layer",
        "lstm_large_inputs",
        "gru",
        "gru_bidirectional_2layer",
        "rnn_bidirectional",
    ] {
        run_fixture(case);
    }
}

/// Aaren runs in f64 by default (`--precision auto`), so it lands within one float32
/// rounding of the numpy float64 definition: far inside the 1e-5/1e-4 checked here,
/// let alone the acceptance bound atol 2e-4, rtol 2e-3.
#[test]
fn reproduces_the_aaren_definition() {
    for case in [
        "aaren_parallel",
        "aaren_iterative",
        "aaren_all_padded",
        "aaren_long_parallel",
        "aaren_long_iterative",
    ] {
        run_fixture(case);
    }
}

/// The fused CPU form (`mode: fused`), in f64 through the CLI, on the same fixtures:
/// 3,000 tokens with scores in the thousands and an all-padded sequence included.
#[test]
fn fused_aaren_reproduces_the_definition() {
    let scratch_dir = scratch("fused");
    for case in ["aaren_parallel", "aaren_all_padded", "aaren_long_parallel"] {
        let dir = fixture(case);
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        config["mode"] = "fused".into();
        let out = scratch_dir.path().join(format!("{case}.safetensors"));
        let r = forward(
            "aaren",
            &config.to_string(),
            Some(&dir.join("weights.safetensors")),
            &dir.join("input.safetensors"),
            &out,
        );
        assert!(
            r.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let got = TensorStore::load(&out).unwrap();
        let want = TensorStore::load(&dir.join("expected.safetensors")).unwrap();
        let (g, w) = (
            got.require("output").unwrap(),
            want.require("output").unwrap(),
        );
        for (a, b) in g.data.iter().zip(&w.data) {
            assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{case}: {a} vs {b}");
        }
    }
}

#[test]
fn aaren_config_errors_name_the_problem() {
    let dir = fixture("aaren_parallel");
    let w = dir.join("weights.safetensors");
    let input = dir.join("input.safetensors");
    let line = expect_failure(
        "aaren",
        r#"{"embed_dim": 8, "num_heads": 2, "mode": "recurrent"}"#,
        Some(&w),
        &input,
        "aaren-mode",
    );
    assert!(
        line.contains(
            "unknown variant `recurrent`, expected one of `iterative`, `parallel`, `fused`"
        ),
        "{line}"
    );
    let line = expect_failure(
        "aaren",
        r#"{"embed_dim": 8, "num_heads": 3}"#,
        Some(&w),
        &input,
        "aaren-heads",
    );
    assert!(
        line.contains("num_heads must be at least 1 and divide embed_dim"),
        "{line}"
    );
    let line = expect_failure(
        "aaren",
        r#"{"embed_dim": 4, "num_heads": 2}"#,
        Some(&w),
        &input,
        "aaren-width",
    );
    assert!(line.contains("query") && line.contains("[4]"), "{line}");
}

#[test]
fn inline_json_config_works() {
    let dir = fixture("mha_self");
    let tmp = scratch("inline");
    let out = tmp.path().join("o.safetensors");
    let r = forward(
        "mha",
        r#"{"embed_dim": 8, "num_heads": 2}"#,
        Some(&dir.join("weights.safetensors")),
        &dir.join("input.safetensors"),
        &out,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.exists());
}

/// Runs a failing call; returns its single stderr line after checking that the exit
/// status is non-zero and that no output file appeared.
fn expect_failure(
    module: &str,
    config: &str,
    weights: Option<&Path>,
    input: &Path,
    tag: &str,
) -> String {
    let tmp = scratch(tag);
    let out = tmp.path().join("out.safetensors");
    let r = forward(module, config, weights, input, &out);
    let stderr = String::from_utf8_lossy(&r.stderr).to_string();
    assert!(!r.status.success(), "{tag}: should fail");
    assert!(!out.exists(), "{tag}: wrote an output file");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{tag}: expected one line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{tag}: {stderr}");
    lines[0].to_string()
}

#[test]
fn bad_requests_fail_with_one_clear_line_and_no_output() {
    let mha = fixture("mha_padding");
    let w = mha.join("weights.safetensors");
    let input = mha.join("input.safetensors");
    let cfg = r#"{"embed_dim": 16, "num_heads": 4}"#;

    let line = expect_failure("transformer", cfg, Some(&w), &input, "unknown");
    assert_eq!(
        line,
        "error: unknown module `transformer`; expected one of: sdpa, mha, external, aaren, lstm, gru, rnn"
    );

    let line = expect_failure(
        "mha",
        r#"{"embed_dim": 16}"#,
        Some(&w),
        &input,
        "missing-key",
    );
    assert_eq!(line, "error: config: `mha`: missing field `num_heads`");

    let line = expect_failure(
        "mha",
        r#"{"embed_dim": 12, "num_heads": 4}"#,
        Some(&w),
        &input,
        "wrong-dim",
    );
    assert!(
        line.contains("weight `in_proj_weight`: expected shape [36, 12], got [48, 16]"),
        "{line}"
    );

    let line = expect_failure(
        "mha",
        r#"{"embed_dim": 16, "num_heads": 3}"#,
        Some(&w),
        &input,
        "heads",
    );
    assert_eq!(
        line,
        "error: config: num_heads must divide embed_dim: embed_dim = 16, num_heads = 3"
    );

    let line = expect_failure("mha", cfg, None, &input, "no-weights");
    assert!(
        line.contains("`mha` needs a weights file with: in_proj_weight"),
        "{line}"
    );

    // Weights from another module: the missing tensor is named with what the file has.
    let ext = fixture("external").join("weights.safetensors");
    let line = expect_failure("mha", cfg, Some(&ext), &input, "wrong-weights");
    assert!(
        line.contains("missing tensor `in_proj_weight` (the file has: mk.weight, mv.weight)"),
        "{line}"
    );

    // Bad JSON in a file: file name, line and column.
    let tmp = scratch("badjson-files");
    let dir = tmp.path();
    let cfg_path = dir.join("config.json");
    std::fs::write(
        &cfg_path,
        "{\n  \"embed_dim\": 16,\n  \"num_heads\": 4,\n}\n",
    )
    .unwrap();
    let line = expect_failure(
        "mha",
        cfg_path.to_str().unwrap(),
        Some(&w),
        &input,
        "badjson",
    );
    assert!(
        line.contains("config.json: invalid JSON at line 4, column 1"),
        "{line}"
    );

    let line = expect_failure("mha", "/no/such/config.json", Some(&w), &input, "nocfg");
    assert!(
        line.contains("--config: cannot read `/no/such/config.json`"),
        "{line}"
    );

    // An input that is not safetensors.
    let line = expect_failure("mha", cfg, Some(&w), &cfg_path, "notst");
    assert!(
        line.contains("config.json: not a valid safetensors file"),
        "{line}"
    );
}

#[test]
fn bad_tensors_are_named() {
    let tmp = scratch("badtensors");
    let dir = tmp.path();
    let w = fixture("mha_padding").join("weights.safetensors");
    let cfg = r#"{"embed_dim": 16, "num_heads": 4}"#;
    let write = |name: &str, tensors: &[(&str, Vec<usize>)]| {
        let mut s = TensorStore::new(name);
        for (n, shape) in tensors {
            let len = shape.iter().product();
            s.insert(*n, shape.clone(), vec![0.25; len]).unwrap();
        }
        let p = dir.join(name);
        s.save(&p).unwrap();
        p
    };
    let p = write("rank.safetensors", &[("query", vec![2, 16])]);
    let line = expect_failure("mha", cfg, Some(&w), &p, "rank");
    assert!(
        line.contains("tensor `query`: expected shape [B, Lq, E=16], got [2, 16]"),
        "{line}"
    );

    let p = write(
        "kv.safetensors",
        &[
            ("query", vec![2, 3, 16]),
            ("key", vec![2, 4, 16]),
            ("value", vec![2, 5, 16]),
        ],
    );
    let line = expect_failure("mha", cfg, Some(&w), &p, "kv");
    assert!(
        line.contains("tensor `value`: expected shape [B=2, Lk=4, E=16], got [2, 5, 16]"),
        "{line}"
    );

    // 0.25 is not a 0/1 mask value.
    let p = write(
        "mask.safetensors",
        &[("query", vec![1, 3, 16]), ("key_padding_mask", vec![1, 3])],
    );
    let line = expect_failure("mha", cfg, Some(&w), &p, "mask");
    assert!(
        line.contains("key_padding_mask: expected 0/1 values (1 = ignore this key), found 0.25"),
        "{line}"
    );

    let p = write(
        "sdpa.safetensors",
        &[("query", vec![1, 2, 3, 4]), ("key", vec![1, 2, 5, 4])],
    );
    let line = expect_failure("sdpa", "{}", None, &p, "sdpa-missing");
    assert!(line.contains("missing tensor `value`"), "{line}");
}

#[test]
fn unused_keys_and_tensors_are_warnings() {
    let dir = fixture("sdpa_plain");
    let tmp = scratch("warn");
    let out = tmp.path().join("o.safetensors");
    let r = forward(
        "sdpa",
        r#"{"causal": false, "dropout": 0.1}"#,
        None,
        &dir.join("input.safetensors"),
        &out,
    );
    assert!(r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("warning: config key `dropout` is not used by `sdpa`"),
        "{stderr}"
    );
}
