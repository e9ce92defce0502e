//! `attnkit bench` prints the JSON object of the benchmark contract.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn every_workload_prints_the_contract_object() {
    for (workload, len) in [
        ("mha-forward", "16"),
        ("mha-forward-fused", "16"),
        ("mha-train-step", "16"),
        ("sdpa-fused", "16"),
        ("gemm", "16"),
        ("copy", "16"),
        ("aaren-fused", "16"),
        ("aaren-scan-parallel", "16"),
        ("aaren-scan-iterative", "16"),
        ("aaren-scan-fused", "16"),
        ("aaren-parallel", "16"),
        ("aaren-iterative", "16"),
        ("aaren-stream", "100"),
        ("kv-cache-decode", "100"),
        ("count-train", "16"),
        ("bilstm-train-step", "16"),
        ("bigru-train-step", "16"),
        ("aaren-train-step", "16"),
        ("aaren-scan-train-step", "16"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_attnkit"))
            .args([
                "bench", workload, "--batch", "2", "--heads", "2", "--len", len, "--embed", "8",
            ])
            .args(["--runs", "3", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{workload}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["workload"], workload);
        assert_eq!(v["runs"], 3);
        assert!(v["threads"].as_u64().unwrap() >= 1);
        let (min, med, max) = (
            v["min_ms"].as_f64().unwrap(),
            v["median_ms"].as_f64().unwrap(),
            v["max_ms"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= med && med <= max, "{v}");
        assert!(v["shape"].is_object());
        let streaming = workload == "aaren-stream" || workload == "kv-cache-decode";
        assert_eq!(v["peak_rss_bytes"].is_u64(), streaming, "{v}");
        // The work of one run, where it is defined: B 2, L 16, E 8, H 2.
        let want_gflop = match workload {
            "mha-forward" | "mha-forward-fused" => {
                Some(8.0 * 2.0 * 16.0 * 64.0 + 4.0 * 2.0 * 256.0 * 8.0)
            }
            "sdpa-fused" => Some(4.0 * 2.0 * 256.0 * 8.0),
            "gemm" => Some(2.0 * 2.0 * 16.0 * 64.0),
            "aaren-parallel" | "aaren-iterative" => Some(6.0 * 2.0 * 16.0 * 64.0),
            // The query is folded into the keys: the value and output projections.
            "aaren-fused" => Some(4.0 * 2.0 * 16.0 * 64.0),
            _ => None,
        };
        match want_gflop {
            Some(f) => {
                assert_eq!(v["gflop"].as_f64().unwrap(), f / 1e9, "{v}");
                let rate = v["gflops"].as_f64().unwrap();
                assert!((rate - f / 1e6 / med).abs() <= 1e-9 * rate, "{v}");
            }
            None => assert!(v.get("gflop").is_none(), "{v}"),
        }
        let want_bytes = match workload {
            "aaren-scan-fused" => Some(4.0 * (2.0 * 2.0 * 16.0 + 2.0 * 2.0 * 16.0 * 8.0)),
            "copy" => Some(8.0 * 2.0 * 16.0 * 8.0),
            _ => None,
        };
        assert_eq!(v["gbytes"].as_f64(), want_bytes.map(|b| b / 1e9), "{v}");
        let recurrent = workload == "bilstm-train-step" || workload == "bigru-train-step";
        match v["tokens_per_s"].as_f64() {
            Some(t) => {
                assert!(recurrent, "{v}");
                assert!((t - 2.0 * 16.0 / (med / 1e3)).abs() <= 1e-9 * t, "{v}");
            }
            None => assert!(!recurrent, "{v}"),
        }
    }
}

/// `--causal` and `--aaren` name the workloads they apply to, and are refused elsewhere.
#[test]
fn workload_flags_are_refused_where_they_do_not_apply() {
    for (workload, flag) in [("gemm", "--causal"), ("mha-forward", "--aaren")] {
        let out = Command::new(env!("CARGO_BIN_EXE_attnkit"))
            .args([
                "bench", workload, flag, "--len", "16", "--embed", "8", "--runs", "1",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("applies to"), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .args([
            "bench",
            "mha-train-step",
            "--causal",
            "--batch",
            "2",
            "--heads",
            "2",
        ])
        .args(["--len", "16", "--embed", "8", "--runs", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shape"]["causal"], true);
}

#[test]
fn bad_shapes_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .args(["bench", "mha-forward", "--heads", "3", "--embed", "8"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("H dividing E"), "{err}");
}
