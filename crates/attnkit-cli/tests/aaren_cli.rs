//! `attnkit aaren compare|decode|sequence` as a user runs them.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
}

/// A scratch folder, removed when dropped.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("attnkit-aaren-cli-{tag}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn compare_reports_finite_errors_at_f32_rounding_level() {
    let dir = scratch("compare");
    let json = dir.path().join("c.json");
    let out = bin()
        .args([
            "aaren",
            "compare",
            "--len",
            "100,5000",
            "--score-scale",
            "10000",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("parallel vs f64") && !stdout.contains("NON-FINITE"),
        "{stdout}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["reference"], "direct");
    assert_eq!(results[1]["reference"], "recurrence");
    for r in results {
        for pair in [
            "parallel_vs_reference",
            "iterative_vs_reference",
            "compensated_vs_reference",
        ] {
            assert_eq!(r[pair]["finite"], true);
            let rel = r[pair]["max_rel"].as_f64().unwrap();
            assert!(rel <= 16.0 * f32::EPSILON as f64, "{pair}: {rel}");
        }
    }
}

#[test]
fn compare_refuses_bad_options_in_one_line() {
    for (args, needle) in [
        (
            vec!["--score-scale=-1"],
            "--score-scale must be a positive number",
        ),
        (
            vec!["--len", "0"],
            "batch, heads, len and dims must be at least 1",
        ),
    ] {
        let out = bin()
            .args(["aaren", "compare"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn decode_shows_a_constant_state_and_a_growing_cache() {
    let dir = scratch("decode");
    let json = dir.path().join("d.json");
    let out = bin()
        .args([
            "aaren",
            "decode",
            "--embed",
            "8",
            "--heads",
            "2",
            "--len",
            "10,100,1000",
            "--steps",
            "4",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["results"].as_array().unwrap();
    let state: Vec<u64> = rows
        .iter()
        .map(|r| r["aaren_state_bytes"].as_u64().unwrap())
        .collect();
    let cache: Vec<u64> = rows
        .iter()
        .map(|r| r["kv_cache_bytes"].as_u64().unwrap())
        .collect();
    // 2 heads · (4 + 2) floats; 2·E floats per cached token (L − 1 prefilled + 4 steps).
    assert_eq!(state, [48, 48, 48]);
    assert_eq!(cache, [(9 + 4) * 64, (99 + 4) * 64, (999 + 4) * 64]);
}

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn decode_and_sequence_draw_their_charts() {
    let scratch_dir = scratch("charts");
    let dir = scratch_dir.path();
    let out = bin()
        .args([
            "aaren", "decode", "--embed", "8", "--heads", "2", "--len", "10,100", "--steps", "2",
            "--charts",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_png(&dir.join("decode-time.png")));
    assert!(is_png(&dir.join("decode-memory.png")));
    let json = dir.join("s.json");
    let out = bin()
        .args([
            "aaren", "sequence", "--embed", "8", "--heads", "2", "--len", "16,64", "--runs", "1",
            "--charts",
        ])
        .arg(dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_png(&dir.join("sequence-time.png")));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for row in doc["results"].as_array().unwrap() {
        for key in [
            "causal_mha_ms",
            "causal_mha_fused_ms",
            "aaren_fused_ms",
            "aaren_stream_ms",
        ] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key}: {row}");
        }
    }
    // No partial files are left beside the charts.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[test]
fn sequence_times_every_form() {
    let out = bin()
        .args([
            "aaren", "sequence", "--embed", "8", "--heads", "2", "--len", "16,64", "--runs", "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("16 ") || l.trim_start().starts_with("64 "))
            .count(),
        2,
        "{stdout}"
    );
}
