//! `attnkit forward` as a user runs it: on PyTorch fixtures, and on every kind of bad
//! input (which must exit non-zero with one line naming the problem and write nothing).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attnkit::contract;
use attnkit::store::TensorStore;
use attnkit::verify::{CaseReport, Fixture, FixtureSummary, Tolerance};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/attention")
}

fn fixture(case: &str) -> PathBuf {
    fixtures_root().join(case)
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
    forward_command(module, config, weights, input, output)
        .output()
        .unwrap()
}

fn forward_command(
    module: &str,
    config: &str,
    weights: Option<&Path>,
    input: &Path,
    output: &Path,
) -> Command {
    let mut cmd = bin();
    cmd.args(["forward", "--module", module, "--config", config]);
    if let Some(w) = weights {
        cmd.arg("--weights").arg(w);
    }
    cmd.arg("--input").arg(input).arg("--output").arg(output);
    cmd
}

/// The fixtures' float32 tolerance, which every case meets through the binary: Aaren
/// runs in f64 by default (`--precision auto`) and lands within one float32 rounding of
/// the numpy float64 definition, far inside its acceptance bound atol 2e-4, rtol 2e-3.
const F32: Tolerance = Tolerance::new(1e-5, 1e-4);

/// The committed cases of the contract's modules, split by whether `select` takes the
/// module name.
fn contract_cases(select: impl Fn(&str) -> bool) -> Vec<Fixture> {
    Fixture::load_all(&fixtures_root())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|f| contract::MODULES.contains(&f.module.as_str()) && select(&f.module))
        .collect()
}

/// Runs `case` through the binary with `config` (a path or inline JSON) and checks every
/// output within [`F32`]; a failed run, a warning or an unreadable output is reported
/// as a case that did not run.
fn run_fixture(case: &Fixture, config: &str) -> CaseReport {
    run_fixture_on(case, config, None, F32)
}

/// [`run_fixture`] with `--device device` (if given) and tolerance `tol`.
fn run_fixture_on(
    case: &Fixture,
    config: &str,
    device: Option<&str>,
    tol: Tolerance,
) -> CaseReport {
    let out_dir = scratch(&case.name);
    let out = out_dir.path().join("out.safetensors");
    let weights = case.weights_path();
    let mut cmd = forward_command(
        &case.module,
        config,
        weights.as_deref(),
        &case.input_path(),
        &out,
    );
    if let Some(d) = device {
        cmd.args(["--device", d]);
    }
    let r = cmd.output().unwrap();
    if !r.status.success() || !r.stderr.is_empty() {
        return CaseReport::not_run(
            &case.name,
            format!(
                "{}: {}",
                r.status,
                String::from_utf8_lossy(&r.stderr).trim()
            ),
        );
    }
    match TensorStore::load(&out) {
        Ok(got) => case.check_with(&got, tol),
        Err(e) => CaseReport::not_run(&case.name, e),
    }
}

/// Runs every case and asserts they all pass, reporting every failure at once.
fn assert_all_pass(cases: &[Fixture], config: impl Fn(&Fixture) -> String) -> usize {
    let mut summary = FixtureSummary::new();
    for case in cases {
        summary.push(run_fixture(case, &config(case)));
    }
    assert!(summary.passed(), "{summary}");
    summary.cases.len()
}

fn config_file(case: &Fixture) -> String {
    case.config_path().to_str().unwrap().to_string()
}

#[test]
fn reproduces_pytorch_fixtures() {
    // sdpa ×5, mha ×4, external ×2, lstm ×2, gru ×2, rnn ×1.
    let cases = contract_cases(|m| m != "aaren");
    assert_eq!(assert_all_pass(&cases, config_file), 16);
}

/// Every contract fixture through `forward --device` on a GPU backend (a build with
/// `--features wgpu`; `ATTNKIT_TEST_DEVICE` names the device, default `wgpu`; CI uses
/// Mesa's lavapipe, `wgpu:cpu`): the composed operations instead of the CPU kernels, in
/// f32 throughout. PyTorch's float32 cases keep their tolerance; Aaren, computed in f32
/// rather than the CPU's f64, is held to its acceptance bound (atol 2e-4, rtol 2e-3).
/// Each run compiles the backend's kernels afresh (16 s a process on lavapipe), so by
/// default it takes the first case of each of the seven modules;
/// `ATTNKIT_GPU_FIXTURES=all` takes all 21.
#[cfg(feature = "wgpu")]
#[test]
fn gpu_device_reproduces_the_fixtures() {
    let device = std::env::var("ATTNKIT_TEST_DEVICE").unwrap_or_else(|_| "wgpu".into());
    let all = std::env::var("ATTNKIT_GPU_FIXTURES").is_ok_and(|v| v == "all");
    let mut summary = FixtureSummary::new();
    let mut cases = contract_cases(|_| true);
    if !all {
        let mut seen = std::collections::HashSet::new();
        cases.retain(|c| seen.insert(c.module.clone()));
    }
    for case in &cases {
        let tol = if case.module == "aaren" {
            Tolerance::new(2e-4, 2e-3)
        } else {
            F32
        };
        summary.push(run_fixture_on(case, &config_file(case), Some(&device), tol));
    }
    assert!(summary.passed(), "{summary}");
    assert_eq!(summary.cases.len(), if all { 21 } else { 7 });
}

#[test]
fn reproduces_the_aaren_definition() {
    let cases = contract_cases(|m| m == "aaren");
    assert_eq!(assert_all_pass(&cases, config_file), 5);
}

/// The fused CPU form (`mode: fused`), in f64 through the CLI, on the same fixtures:
/// 3,000 tokens with scores in the thousands and an all-padded sequence included.
#[test]
fn fused_aaren_reproduces_the_definition() {
    let cases: Vec<Fixture> = contract_cases(|m| m == "aaren")
        .into_iter()
        .filter(|f| f.config["mode"] == "parallel")
        .collect();
    let fused = |case: &Fixture| {
        let mut config = case.config.clone();
        config["mode"] = "fused".into();
        config.to_string()
    };
    // aaren_parallel, aaren_all_padded, aaren_long_parallel.
    assert_eq!(assert_all_pass(&cases, fused), 3);
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

/// Sizes that a config or a file header declares are checked before anything is
/// allocated: each absurd one exits 1 (not 101, a panic) with one line naming it, and
/// writes nothing.
#[test]
fn absurd_sizes_exit_1_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out.safetensors");
    let mut input = attnkit::store::TensorStore::new("input");
    input.insert("query", vec![1, 1, 4], vec![0.0; 4]).unwrap();
    let input_path = dir.join("input.safetensors");
    input.save(&input_path).unwrap();
    // A safetensors file whose one tensor `name` declares `shape` over `bytes` data bytes.
    let absurd = |file: &str, name: &str, shape: &str, bytes: usize| {
        let header =
            format!(r#"{{"{name}":{{"dtype":"F32","shape":{shape},"data_offsets":[0,{bytes}]}}}}"#);
        let mut raw = (header.len() as u64).to_le_bytes().to_vec();
        raw.extend_from_slice(header.as_bytes());
        raw.resize(raw.len() + bytes, 0);
        let path = dir.join(file);
        std::fs::write(&path, raw).unwrap();
        path
    };
    let run = |config: &str, weights: Option<&Path>, input: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_attnkit"));
        cmd.args(["forward", "--module", "mha", "--config", config]);
        if let Some(w) = weights {
            cmd.arg("--weights").arg(w);
        }
        let r = cmd
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
        assert_eq!(r.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!out.exists());
        stderr.trim_end().to_string()
    };

    let weights = absurd("w.safetensors", "in_proj_weight", "[4]", 16);
    let line = run(
        r#"{"embed_dim": 4000000000, "num_heads": 4}"#,
        Some(&weights),
        &input_path,
    );
    assert_eq!(
        line,
        "error: config: in_proj_weight [3·embed_dim, embed_dim] with embed_dim = 4000000000: \
         shape [12000000000, 4000000000]: expected at most 2147483648 (2^31) elements, got \
         more than 2^64"
    );

    let config = r#"{"embed_dim": 4, "num_heads": 2}"#;
    let bad = absurd("big.safetensors", "query", "[4000000000,4000000000]", 4);
    let line = run(config, None, &bad);
    assert!(
        line.starts_with("error: ") && line.contains("big.safetensors: not a valid safetensors file: tensor `query`: shape [4000000000, 4000000000]: expected at most 2147483648 (2^31) elements, got 16000000000000000000"),
        "{line}"
    );

    // No data at all, yet dimensions that any operation would size its result by.
    let empty = absurd(
        "empty.safetensors",
        "in_proj_weight",
        "[0,4000000000,4000000000]",
        0,
    );
    let line = run(config, Some(&empty), &input_path);
    assert!(
        line.contains("empty.safetensors: tensor `in_proj_weight`: shape [0, 4000000000, 4000000000]: expected at most 2147483648 (2^31) elements, got 16000000000000000000"),
        "{line}"
    );
}
