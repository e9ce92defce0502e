//! `attnkit train` as a user runs it: summaries, charts, and interrupted runs resumed.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
}

/// A scratch folder, removed when dropped.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("attnkit-train-cli-{tag}-"))
        .tempdir()
        .unwrap()
}

fn count(out: &Path, steps: u64, extra: &[&str]) -> Value {
    let summary = out.join("summary.json");
    let r = bin()
        .args([
            "train",
            "count",
            "--seed",
            "3",
            "--log-every",
            "10",
            "--checkpoint-every",
            "20",
        ])
        .args(["--eval-sequences", "500", "--steps", &steps.to_string()])
        .arg("--out")
        .arg(out)
        .arg("--summary")
        .arg(&summary)
        .args(extra)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap()
}

#[test]
fn count_writes_a_summary_and_resumes_exactly() {
    let straight_dir_tmp = scratch("straight");
    let straight_dir = straight_dir_tmp.path();
    let straight = count(straight_dir, 40, &[]);
    for key in [
        "task",
        "steps",
        "seed",
        "wall_seconds",
        "eval_accuracy",
        "final_train_loss",
    ] {
        assert!(!straight[key].is_null(), "summary lacks {key}: {straight}");
    }
    assert_eq!(straight["task"], "count");
    assert_eq!(straight["steps"], 40);

    // Interrupted after 20 steps, then resumed to 40.
    let resumed_dir_tmp = scratch("resumed");
    let resumed_dir = resumed_dir_tmp.path();
    count(resumed_dir, 20, &[]);
    let resumed = count(resumed_dir, 40, &["--resume"]);
    for key in [
        "steps",
        "eval_accuracy",
        "final_train_loss",
        "final_val_accuracy",
    ] {
        assert_eq!(straight[key], resumed[key], "{key}");
    }
    assert_eq!(
        std::fs::read_to_string(straight_dir.join("count-history.csv")).unwrap(),
        std::fs::read_to_string(resumed_dir.join("count-history.csv")).unwrap()
    );
}

#[test]
fn resume_refuses_missing_and_mismatched_checkpoints() {
    let dir_tmp = scratch("refuse");
    let dir = dir_tmp.path();
    let r = bin()
        .args(["train", "count", "--steps", "5", "--resume", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains("count.ckpt"), "{err}");

    count(dir, 10, &[]);
    let r = bin()
        .args([
            "train", "count", "--steps", "20", "--resume", "--mixer", "aaren", "--seed", "3",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains("differs from this run"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn pe_regression_writes_a_chart_and_a_csv() {
    let dir_tmp = scratch("pe");
    let dir = dir_tmp.path();
    let summary = dir.join("s.json");
    let r = bin()
        .args([
            "train",
            "pe-regression",
            "--epochs",
            "3",
            "--samples",
            "256",
            "--out",
        ])
        .arg(dir)
        .arg("--summary")
        .arg(&summary)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let png = std::fs::read(dir.join("pe-regression-loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let csv = std::fs::read_to_string(dir.join("pe-regression-loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(s["task"], "pe-regression");
    assert!(s["final_train_loss"].as_f64().unwrap() > 0.0);
    assert!(s["final_val_loss"].as_f64().unwrap() < s["initial_val_loss"].as_f64().unwrap());
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[test]
fn pe_regression_resumes_exactly() {
    let run = |dir: &Path, epochs: &str, resume: bool| -> Value {
        let summary = dir.join("s.json");
        let mut cmd = bin();
        cmd.args([
            "train",
            "pe-regression",
            "--samples",
            "200",
            "--epochs",
            epochs,
            "--out",
        ])
        .arg(dir)
        .arg("--summary")
        .arg(&summary);
        if resume {
            cmd.arg("--resume");
        }
        let r = cmd.output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap()
    };
    let (a_tmp, b_tmp) = (scratch("pe-straight"), scratch("pe-resumed"));
    let (a, b) = (a_tmp.path(), b_tmp.path());
    let straight = run(a, "4", false);
    run(b, "2", false);
    let resumed = run(b, "4", true);
    for key in [
        "steps",
        "final_train_loss",
        "final_val_loss",
        "initial_val_loss",
    ] {
        assert_eq!(straight[key], resumed[key], "{key}");
    }
    assert_eq!(
        std::fs::read_to_string(a.join("pe-regression-loss.csv")).unwrap(),
        std::fs::read_to_string(b.join("pe-regression-loss.csv")).unwrap()
    );
}

/// A toy aclImdb tree and GloVe file under `data`.
fn toy_imdb(data: &Path) {
    for part in ["train", "test"] {
        for (class, word) in [("pos", "great"), ("neg", "awful")] {
            let d = data.join("aclImdb").join(part).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..12 {
                std::fs::write(
                    d.join(format!("{i}_0.txt")),
                    format!("the film was {word} {i}"),
                )
                .unwrap();
            }
        }
    }
    std::fs::write(
        data.join("glove.6B.50d.txt"),
        "great 1 0 0 0\nawful -1 0 0 0\nthe 0 1 0 0\n",
    )
    .unwrap();
}

/// `train imdb --compare` on a toy aclImdb tree and a toy GloVe file: a row per model and
/// embedding, a summary, and errors that name missing data.
#[test]
fn imdb_compare_writes_a_table() {
    let dir_tmp = scratch("imdb");
    let dir = dir_tmp.path();
    let data = dir.join("data");
    toy_imdb(&data);
    let summary = dir.join("s.json");
    let r = bin()
        .args([
            "train",
            "imdb",
            "--compare",
            "--epochs",
            "1",
            "--max-len",
            "8",
            "--hidden",
            "4",
            "--batch",
            "8",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir)
        .arg("--summary")
        .arg(&summary)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv = std::fs::read_to_string(dir.join("imdb-compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 17, "{csv}");
    assert!(
        csv.contains("bilstm,glove") && csv.contains("aaren,onehot"),
        "{csv}"
    );
    let s: Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(s["runs"].as_array().unwrap().len(), 16);

    let r = bin()
        .args(["train", "imdb", "--data"])
        .arg(dir.join("nowhere"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains("missing folder"), "{err}");
}

/// `train imdb` interrupted after one epoch and resumed to three gives the same
/// history and test accuracy as three epochs straight; resuming with no checkpoint is
/// refused with its name.
#[test]
fn imdb_resumes_exactly() {
    let dir_tmp = scratch("imdb-resume");
    let dir = dir_tmp.path();
    let data = dir.join("data");
    toy_imdb(&data);
    let run = |out: &Path, epochs: &str, resume: bool| -> std::process::Output {
        let mut cmd = bin();
        cmd.args([
            "train",
            "imdb",
            "--model",
            "gru",
            "--epochs",
            epochs,
            "--max-len",
            "8",
            "--hidden",
            "4",
            "--batch",
            "8",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out)
        .arg("--summary")
        .arg(out.join("s.json"));
        if resume {
            cmd.arg("--resume");
        }
        cmd.output().unwrap()
    };
    let summary = |out: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("s.json")).unwrap()).unwrap()
    };
    let (a, b) = (dir.join("straight"), dir.join("resumed"));
    assert!(run(&a, "3", false).status.success());
    let missing = run(&b, "3", true);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("imdb-gru-glove.ckpt"), "{err}");
    assert!(run(&b, "1", false).status.success());
    let r = run(&b, "3", true);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("after epoch 1"));
    let (sa, sb) = (summary(&a), summary(&b));
    for key in ["steps", "eval_accuracy", "history"] {
        assert_eq!(sa[key], sb[key], "{key}");
    }
    assert_eq!(sa["history"].as_array().unwrap().len(), 3);
}
