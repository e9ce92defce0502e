//! `attnkit export` as a user runs it: every module of the contract on its fixture's
//! config and weights (the file decodes, names and dynamic dimensions as the contract
//! says), and bad requests (exit non-zero, one line naming the problem, no file).
//! Running the files is tested in `attnkit-onnx` (tract) and `tools/onnx_check.py`
//! (onnxruntime).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attnkit::verify::Fixture;
use attnkit_onnx::proto::tensor_shape_proto::dimension;
use attnkit_onnx::proto::{ValueInfoProto, type_proto};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/fixtures/attention")
        .join(case)
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        // Tests run in parallel threads of one process and export the same cases: a
        // counter keeps their folders apart.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("attnkit-export-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn export(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .arg("export")
        .args(args)
        .output()
        .unwrap()
}

fn dims(v: &ValueInfoProto) -> Vec<String> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().unwrap().value.as_ref() else {
        panic!("not a tensor type")
    };
    t.shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match d.value.as_ref().unwrap() {
            dimension::Value::DimValue(n) => n.to_string(),
            dimension::Value::DimParam(p) => p.clone(),
        })
        .collect()
}

fn export_fixture(case: &str, extra: &[&str]) -> (attnkit_onnx::proto::ModelProto, String) {
    let fixture = Fixture::load(&fixture(case)).unwrap_or_else(|e| panic!("{e}"));
    let scratch = Scratch::new(case);
    let out = scratch.0.join("model.onnx");
    let config = fixture.config_path();
    let weights = fixture.weights_path();
    let mut args = vec![
        "--module",
        fixture.module.as_str(),
        "--config",
        config.to_str().unwrap(),
    ];
    if let Some(w) = &weights {
        args.extend(["--weights", w.to_str().unwrap()]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    let r = export(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let model = attnkit_onnx::decode_model(&out).unwrap();
    (model, String::from_utf8_lossy(&r.stdout).into_owned())
}

fn names(vs: &[ValueInfoProto]) -> Vec<&str> {
    vs.iter().map(|v| v.name.as_str()).collect()
}

#[test]
fn every_module_exports_with_contract_names_and_dynamic_dims() {
    let cases = [
        (
            "sdpa_padding_scale",
            vec!["query", "key", "value", "key_padding_mask"],
            vec!["output", "weights"],
        ),
        (
            "mha_padding",
            vec!["query", "key", "value", "key_padding_mask"],
            vec!["output", "weights"],
        ),
        ("external", vec!["x"], vec!["output"]),
        (
            "aaren_iterative",
            vec!["x", "key_padding_mask"],
            vec!["output"],
        ),
        (
            "aaren_parallel",
            vec!["x", "key_padding_mask"],
            vec!["output"],
        ),
        (
            "lstm_bidirectional_2layer",
            vec!["x"],
            vec!["output", "h_n", "c_n"],
        ),
        ("gru", vec!["x"], vec!["output", "h_n"]),
        ("rnn_bidirectional", vec!["x"], vec!["output", "h_n"]),
    ];
    for (case, inputs, outputs) in cases {
        let (model, stdout) = export_fixture(case, &[]);
        assert_eq!(model.ir_version, 8, "{case}");
        assert_eq!(model.opset_import[0].version, 17, "{case}");
        let g = model.graph.as_ref().unwrap();
        assert_eq!(names(&g.input), inputs, "{case}");
        assert_eq!(names(&g.output), outputs, "{case}");
        // Batch and sequence length are named (dynamic) dimensions.
        let first = dims(&g.input[0]);
        assert_eq!(first[0], "B", "{case}: {first:?}");
        assert!(
            first[first.len() - 2].starts_with('L') || first[first.len() - 2] == "N",
            "{case}: {first:?}"
        );
        assert!(stdout.starts_with("wrote "), "{case}: {stdout}");
    }
}

/// No input is also an initializer (onnxruntime would hide it from `get_inputs()`).
fn assert_no_input_is_an_initializer(model: &attnkit_onnx::proto::ModelProto, what: &str) {
    let g = model.graph.as_ref().unwrap();
    for t in &g.initializer {
        assert!(
            !g.input.iter().any(|i| i.name == t.name),
            "{what}: `{}` is both an input and an initializer",
            t.name
        );
    }
}

/// The mask is a plain input by default and gone with `--no-mask`; the mask [B, L*] has
/// the batch and key length of the other inputs; no export lists an initializer as
/// an input.
#[test]
fn mask_is_a_plain_input_or_left_out_with_no_mask() {
    for (case, mask_dims, without) in [
        (
            "sdpa_padding_scale",
            ["B", "Lk"],
            vec!["query", "key", "value"],
        ),
        ("mha_padding", ["B", "Lk"], vec!["query", "key", "value"]),
        ("aaren_iterative", ["B", "L"], vec!["x"]),
        ("aaren_parallel", ["B", "L"], vec!["x"]),
    ] {
        let (with_mask, _) = export_fixture(case, &[]);
        assert_no_input_is_an_initializer(&with_mask, case);
        let g = with_mask.graph.as_ref().unwrap();
        let mask = g.input.last().unwrap();
        assert_eq!(mask.name, "key_padding_mask", "{case}");
        assert_eq!(dims(mask), mask_dims, "{case}");

        let (no_mask, stdout) = export_fixture(case, &["--no-mask"]);
        assert_no_input_is_an_initializer(&no_mask, case);
        assert_eq!(
            names(&no_mask.graph.as_ref().unwrap().input),
            without,
            "{case}"
        );
        assert!(!stdout.contains("key_padding_mask"), "{case}: {stdout}");
    }
    for case in ["external", "gru", "lstm_bidirectional_2layer"] {
        let (model, _) = export_fixture(case, &[]);
        assert_no_input_is_an_initializer(&model, case);
    }
}

/// `--no-mask` on a module without a mask input exports it unchanged, with a warning.
#[test]
fn no_mask_on_a_module_without_a_mask_warns() {
    let scratch = Scratch::new("nomask-gru");
    let out = scratch.0.join("gru.onnx");
    let dir = fixture("gru");
    let r = export(&[
        "--module",
        "gru",
        "--config",
        dir.join("config.json").to_str().unwrap(),
        "--weights",
        dir.join("weights.safetensors").to_str().unwrap(),
        "--no-mask",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stderr.contains("`gru` has no `key_padding_mask` input to leave out"),
        "{stderr}"
    );
    assert!(out.exists());
}

#[test]
fn aaren_forms_use_scan_doubling_or_one_step() {
    let (iterative, _) = export_fixture("aaren_iterative", &[]);
    let (parallel, _) = export_fixture("aaren_parallel", &["--max-len", "1024"]);
    let (step, _) = export_fixture("aaren_iterative", &["--step"]);
    let ops = |m: &attnkit_onnx::proto::ModelProto| attnkit_onnx::summary::op_counts(m);
    assert!(ops(&iterative).contains("Scan 1"), "{}", ops(&iterative));
    // 10 doubling levels for 1024 tokens, three shifted tensors (m, c, a) each.
    assert!(ops(&parallel).contains("Pad 30"), "{}", ops(&parallel));
    assert!(!ops(&parallel).contains("Scan"));
    assert!(!ops(&parallel).contains("CumSum"));
    let g = step.graph.as_ref().unwrap();
    assert_eq!(names(&g.input), attnkit_onnx::STEP_INPUTS);
    assert_eq!(names(&g.output), attnkit_onnx::STEP_OUTPUTS);
    assert_eq!(dims(&g.input[1]), ["B", "2", "4"]);
}

/// Runs a failing export into a folder holding an older file under the target name:
/// it must exit 1 with one line, mention `needle`, and leave the old file as it was.
fn assert_refused(args: &[&str], needle: &str) {
    let scratch = Scratch::new("refused");
    let out = scratch.0.join("model.onnx");
    std::fs::write(&out, b"older file").unwrap();
    let mut all = args.to_vec();
    all.extend(["--out", out.to_str().unwrap()]);
    let r = export(&all);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected `{needle}` in: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"older file");
    let leftovers = std::fs::read_dir(&scratch.0).unwrap().count();
    assert_eq!(leftovers, 1, "a temporary file was left behind");
}

#[test]
fn bad_requests_fail_clearly_and_write_nothing() {
    let aaren = fixture("aaren_parallel");
    let aaren_cfg = aaren.join("config.json");
    let aaren_w = aaren.join("weights.safetensors");
    let (cfg, w) = (aaren_cfg.to_str().unwrap(), aaren_w.to_str().unwrap());
    assert_refused(
        &["--module", "transformer", "--config", "{}"],
        "unknown module `transformer`; expected one of: sdpa, mha, external, aaren, lstm, gru, rnn",
    );
    assert_refused(
        &["--module", "sdpa", "--config", "{}", "--step"],
        "the one-step streaming form exists only for `aaren`",
    );
    assert_refused(
        &[
            "--module",
            "lstm",
            "--config",
            r#"{"input_size": 3, "hidden_size": 2}"#,
            "--weights",
            w,
        ],
        "weight_ih_l0",
    );
    assert_refused(
        &[
            "--module",
            "aaren",
            "--config",
            r#"{"embed_dim": 4, "num_heads": 2}"#,
            "--weights",
            w,
        ],
        "expected shape",
    );
    assert_refused(
        &[
            "--module",
            "aaren",
            "--config",
            r#"{"embed_dim": 8, "num_heads": 3}"#,
            "--weights",
            w,
        ],
        "num_heads must be at least 1 and divide embed_dim: embed_dim = 8, num_heads = 3",
    );
    assert_refused(
        &["--module", "aaren", "--config", cfg],
        "needs a weights file",
    );
    assert_refused(
        &[
            "--module",
            "aaren",
            "--config",
            r#"{"embed_dim": 4, "num_heads": 1, "mode": "sideways"}"#,
            "--weights",
            w,
        ],
        "unknown variant `sideways`",
    );
    assert_refused(
        &[
            "--module",
            "aaren",
            "--config",
            cfg,
            "--weights",
            w,
            "--max-len",
            "0",
        ],
        "--max-len must be between 1 and 2^30",
    );
}

#[test]
fn unused_keys_and_weights_are_warned_about() {
    let scratch = Scratch::new("warn");
    let out = scratch.0.join("m.onnx");
    let w = fixture("aaren_parallel").join("weights.safetensors");
    let r = export(&[
        "--module",
        "aaren",
        "--config",
        r#"{"embed_dim": 8, "num_heads": 2, "heads": 2}"#,
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("config key `heads` is not used by `aaren`"),
        "{stderr}"
    );
    assert!(out.exists());
}

#[test]
fn checkpoints_of_other_tasks_and_damaged_files_are_refused() {
    let scratch = Scratch::new("ckpt");
    let run = Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .args([
            "train",
            "pe-regression",
            "--epochs",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(&scratch.0)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ckpt = scratch.0.join("pe-regression.ckpt");
    assert_refused(
        &["--checkpoint", ckpt.to_str().unwrap()],
        "checkpoints of these tasks export: count, imdb",
    );
    let damaged = scratch.0.join("damaged.ckpt");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    assert_refused(&["--checkpoint", damaged.to_str().unwrap()], "damaged.ckpt");
}
