//! `attnkit enhance` as a user runs it, with the model built into the binary.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use attnkit_audio::wav::{read_wav, write_wav};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
}

fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("attnkit-enhance-cli-{tag}-"))
        .tempdir()
        .unwrap()
}

/// A harmonic tone with noise, `seconds` long at `rate` Hz.
fn noisy_tone(rate: u32, seconds: f64) -> Vec<f32> {
    let n = (rate as f64 * seconds) as usize;
    let mut state = 12345u64;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.1;
            let t = i as f64 / rate as f64;
            let s: f64 = (1..5)
                .map(|k| (2.0 * std::f64::consts::PI * 180.0 * k as f64 * t).sin() / k as f64)
                .sum();
            (0.15 * s * (3.0 * t).sin().abs() + noise) as f32
        })
        .collect()
}

/// A PCM WAV header and data, any channel count (hound writes mono only here).
fn raw_wav(channels: u16, bits: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(&(16_000 * channels as u32 * bits as u32 / 8).to_le_bytes());
    b.extend_from_slice(&(channels * bits / 8).to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_file_at_another_rate_comes_out_at_16_khz_with_the_same_duration() {
    let dir = scratch("file");
    let input = dir.path().join("noisy-8k.wav");
    write_wav(&input, 8_000, &noisy_tone(8_000, 1.2345)).unwrap();
    let output = dir.path().join("out.wav");
    run_ok(
        bin()
            .args(["enhance", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let out = read_wav(&output).unwrap();
    assert_eq!(out.rate, 16_000);
    // 9,876 samples at 8 kHz are 19,752 at 16 kHz.
    assert_eq!(out.samples.len(), 19_752);
}

#[test]
fn the_stream_equals_the_file_mode_within_2_lsb() {
    let dir = scratch("stream");
    let signal = noisy_tone(16_000, 2.0371);
    let input = dir.path().join("in.wav");
    write_wav(&input, 16_000, &signal).unwrap();
    let output = dir.path().join("out.wav");
    run_ok(
        bin()
            .args(["enhance", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let file = read_wav(&output).unwrap().samples;
    let pcm: Vec<u8> = signal
        .iter()
        .flat_map(|&x| attnkit_audio::wav::to_i16(x).to_le_bytes())
        .collect();
    let mut child = bin()
        .args(["enhance", "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Write in odd-sized pieces: the stream must reassemble blocks from a pipe.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for piece in pcm.chunks(999) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("real-time factor"), "{stderr}");
    let streamed: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(streamed.len(), signal.len());
    let worst = file
        .iter()
        .zip(&streamed)
        .map(|(&a, &b)| (attnkit_audio::wav::to_i16(a) as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 2, "worst difference {worst} LSB");
}

#[test]
fn a_folder_is_enhanced_and_scored_against_its_references() {
    let dir = scratch("folder");
    let (noisy, clean, out) = (
        dir.path().join("noisy"),
        dir.path().join("clean"),
        dir.path().join("out"),
    );
    for name in ["a.wav", "sub/b.wav"] {
        let x = noisy_tone(16_000, 1.0);
        for d in [&noisy, &clean] {
            std::fs::create_dir_all(d.join(name).parent().unwrap()).unwrap();
        }
        write_wav(&noisy.join(name), 16_000, &x).unwrap();
        let c: Vec<f32> = x.iter().map(|v| v * 0.9).collect();
        write_wav(&clean.join(name), 16_000, &c).unwrap();
    }
    let report = dir.path().join("report.json");
    run_ok(
        bin()
            .args(["enhance", "--input"])
            .arg(&noisy)
            .arg("--output")
            .arg(&out)
            .arg("--reference")
            .arg(&clean)
            .arg("--report")
            .arg(&report),
    );
    assert!(out.join("sub/b.wav").exists());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["files"], 2);
    // The "clean" reference is the noisy input scaled by 0.9: its SI-SDR is bounded only
    // by the 16-bit rounding of both files (signal ~−20 dBFS, rounding ~−100 dBFS).
    let si_sdr = doc["mean"]["noisy"]["si_sdr"].as_f64().unwrap();
    assert!(si_sdr > 50.0, "{si_sdr}");
    assert!(
        doc["mean"]["enhanced"]["pesq_wb"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
}

#[test]
fn bad_inputs_get_one_line_naming_the_file_and_nothing_is_written() {
    let dir = scratch("bad");
    let full = raw_wav(1, 16, &[100; 4000]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text.wav",
            b"this is not audio at all".to_vec(),
            "not a WAV file",
        ),
        (
            "stereo.wav",
            raw_wav(2, 16, &[0; 400]),
            "expected 1 channel (mono), got 2 channels",
        ),
        ("empty.wav", raw_wav(1, 16, &[]), "empty: no samples"),
        ("cut.wav", full[..full.len() - 1001].to_vec(), "truncated"),
    ];
    for (name, bytes, why) in cases {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let output = dir.path().join(format!("out-{name}"));
        let out = bin()
            .args(["enhance", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}: ", input.display())),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(why), "{name}: {stderr}");
        assert!(!output.exists(), "{name}: wrote {}", output.display());
        assert!(!Path::new(&output).with_extension("tmp").exists());
    }
}
