//! The checkpoint container: a magic line, one line of JSON (the header), then the
//! payload — two opaque byte strings (the model's parameters and the optimizer's
//! state), whose lengths and FNV-1a 64 checksum the header records.
//!
//! ```text
//! attnkit-checkpoint 1
//! {"task":"count","config":{…},"step":500,…,"lengths":[M,O],"checksum":"…"}
//! <M model bytes><O optimizer bytes>
//! ```
//!
//! Reading checks each part in order and refuses the file, with its name, at the first
//! that is wrong: a truncated or altered file fails the lengths or the checksum. What
//! the two payloads mean is up to the caller (`attnkit::train::Checkpoint` stores
//! Burn's burnpack bytes in them).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FormatError, Result, one_line};

/// The first line of every checkpoint, newline included.
pub const MAGIC: &str = "attnkit-checkpoint 1\n";

/// The JSON header of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointHeader {
    /// The task, e.g. `count`.
    pub task: String,
    /// The configuration the run was started with (model, optimizer, data).
    pub config: Value,
    /// Optimizer steps taken.
    pub step: u64,
    /// The data generator's state.
    pub rng_state: u64,
    /// The data generator's spare normal, if any.
    pub rng_spare: Option<f64>,
    /// Task-specific state (metric history and the like).
    pub extra: Value,
    /// Payload lengths: model bytes, optimizer bytes. Set by [`encode_checkpoint`].
    pub lengths: [usize; 2],
    /// FNV-1a 64 of the payload, 16 hex digits. Set by [`encode_checkpoint`].
    pub checksum: String,
}

/// A checkpoint file's parts, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointParts {
    /// The header, its lengths and checksum those of the payload below.
    pub header: CheckpointHeader,
    /// The model's bytes.
    pub model: Vec<u8>,
    /// The optimizer's bytes.
    pub optimizer: Vec<u8>,
}

/// FNV-1a 64 of the concatenation of `parts`, as 16 hex digits.
pub fn fnv1a64(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn corrupt(path: &Path, why: impl Into<String>) -> FormatError {
    FormatError::Format {
        path: path.to_path_buf(),
        why: one_line(format!("not a valid attnkit checkpoint: {}", why.into())),
    }
}

/// The bytes of a checkpoint file: `header` with its `lengths` and `checksum` replaced
/// by those of `model` and `optimizer`, then the payload. `path` names the file in
/// errors.
///
/// # Errors
///
/// [`FormatError::Format`] if the header cannot be written as JSON (a float in
/// `config` or `extra` that JSON cannot hold is written as `null` by serde_json, so in
/// practice this does not happen).
pub fn encode_checkpoint(
    header: &CheckpointHeader,
    model: &[u8],
    optimizer: &[u8],
    path: &Path,
) -> Result<Vec<u8>> {
    let mut header = header.clone();
    header.lengths = [model.len(), optimizer.len()];
    header.checksum = fnv1a64(&[model, optimizer]);
    let json = serde_json::to_string(&header).map_err(|e| FormatError::Format {
        path: path.to_path_buf(),
        why: format!("cannot encode the checkpoint header: {e}"),
    })?;
    let mut bytes =
        Vec::with_capacity(MAGIC.len() + json.len() + 1 + model.len() + optimizer.len());
    bytes.extend_from_slice(MAGIC.as_bytes());
    bytes.extend_from_slice(json.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(model);
    bytes.extend_from_slice(optimizer);
    Ok(bytes)
}

/// Reads a checkpoint from its bytes, checking the magic line, the header, the payload
/// lengths and the checksum in turn; `path` names the file in errors.
///
/// # Errors
///
/// [`FormatError::Format`] naming `path` and the first part that is wrong: the magic
/// line, an unterminated or invalid header, payload lengths that overflow or disagree
/// with the bytes present (a truncated file), or a checksum that does not match.
pub fn decode_checkpoint(bytes: &[u8], path: &Path) -> Result<CheckpointParts> {
    let rest = bytes
        .strip_prefix(MAGIC.as_bytes())
        .ok_or_else(|| corrupt(path, "line 1 is not `attnkit-checkpoint 1`"))?;
    let newline = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt(path, "line 2 (the header) is not terminated"))?;
    let (line, payload) = rest.split_at(newline);
    let payload = &payload[1..];
    let header: CheckpointHeader = serde_json::from_slice(line)
        .map_err(|e| corrupt(path, format!("line 2 (the header): {e}")))?;
    let [m, o] = header.lengths;
    let expected = m.checked_add(o).ok_or_else(|| {
        corrupt(
            path,
            format!(
                "the header's payload lengths {m} + {o} overflow; found {} payload bytes",
                payload.len()
            ),
        )
    })?;
    if payload.len() != expected {
        return Err(corrupt(
            path,
            format!(
                "expected {expected} payload bytes after the header, found {} (truncated?)",
                payload.len()
            ),
        ));
    }
    let (model, optimizer) = payload.split_at(m);
    let sum = fnv1a64(&[model, optimizer]);
    if sum != header.checksum {
        return Err(corrupt(
            path,
            format!(
                "checksum {sum} does not match the header's {}",
                header.checksum
            ),
        ));
    }
    Ok(CheckpointParts {
        model: model.to_vec(),
        optimizer: optimizer.to_vec(),
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CheckpointHeader {
        CheckpointHeader {
            task: "count".into(),
            config: serde_json::json!({"embed_dim": 8}),
            step: 3,
            rng_state: 42,
            rng_spare: Some(-0.5),
            extra: Value::Null,
            lengths: [0, 0],
            checksum: String::new(),
        }
    }

    #[test]
    fn round_trip_sets_lengths_and_checksum() {
        let path = Path::new("c.ckpt");
        let bytes = encode_checkpoint(&header(), b"model", b"opt", path).unwrap();
        let back = decode_checkpoint(&bytes, path).unwrap();
        assert_eq!(back.model, b"model");
        assert_eq!(back.optimizer, b"opt");
        assert_eq!(back.header.lengths, [5, 3]);
        assert_eq!(back.header.checksum, fnv1a64(&[b"modelopt"]));
        assert_eq!(
            CheckpointHeader {
                lengths: [0, 0],
                checksum: String::new(),
                ..back.header
            },
            header()
        );
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let path = Path::new("c.ckpt");
        let good = encode_checkpoint(&header(), b"model", b"opt", path).unwrap();
        let err = |bytes: &[u8]| decode_checkpoint(bytes, path).unwrap_err().to_string();
        assert_eq!(
            err(b"attnkit-checkpoint 2\n{}\n"),
            "c.ckpt: not a valid attnkit checkpoint: line 1 is not `attnkit-checkpoint 1`"
        );
        assert!(err(&good[..30]).contains("line 2 (the header) is not terminated"));
        assert!(
            err(&good[..good.len() - 1])
                .contains("expected 8 payload bytes after the header, found 7")
        );
        // A checksum from the file is escaped, so it cannot break the line.
        let newline = format!(
            "{MAGIC}{}\n",
            serde_json::to_string(&CheckpointHeader {
                checksum: "ab\ncd".into(),
                ..header()
            })
            .unwrap()
        );
        assert!(err(newline.as_bytes()).ends_with("does not match the header's ab\\ncd"));
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(err(&flipped).contains("does not match the header's"));
        // Lengths whose sum overflows a usize.
        let huge = format!(
            "{MAGIC}{}\n",
            serde_json::to_string(&CheckpointHeader {
                lengths: [usize::MAX, 2],
                ..header()
            })
            .unwrap()
        );
        assert!(err(huge.as_bytes()).contains("payload lengths 18446744073709551615 + 2 overflow"));
    }
}
