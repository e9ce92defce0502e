//! Checkpoints: a model, its optimizer state and the training loop's own state in one
//! file, written atomically and checked when read.
//!
//! Layout: the line `attnkit-checkpoint 1`, one line of JSON (the header: task, config,
//! step, generator state, task state, the lengths and an FNV-1a 64 checksum of the
//! payload), then the payload — the model's parameters and the optimizer's state, each
//! as Burn's burnpack bytes. The file is written to a temporary name and renamed, so an
//! interrupted save leaves the previous checkpoint intact; a truncated or altered file
//! fails the checksum and is refused with its name.

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AttnError, Result};
use crate::store::write_atomically;

const MAGIC: &str = "attnkit-checkpoint 1\n";

/// Everything needed to continue a training run exactly.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The header.
    pub header: CheckpointHeader,
    /// The model's parameters (burnpack).
    pub model: Vec<u8>,
    /// The optimizer's state (burnpack).
    pub optimizer: Vec<u8>,
}

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
    /// Payload lengths: model bytes, optimizer bytes.
    pub lengths: [usize; 2],
    /// FNV-1a 64 of the payload, hex.
    pub checksum: String,
}

fn fnv1a(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn corrupt(path: &Path, why: impl Into<String>) -> AttnError {
    AttnError::Format {
        path: path.to_path_buf(),
        why: format!("not a valid attnkit checkpoint: {}", why.into()),
    }
}

impl Checkpoint {
    /// A checkpoint of `model` and the given state.
    pub fn new<M: Module>(header: CheckpointHeader, model: &M, optimizer: Vec<u8>) -> Result<Self> {
        let model = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| AttnError::Value {
                what: "model".into(),
                why: format!("cannot serialise: {e:?}"),
            })?
            .to_vec();
        Ok(Self {
            header,
            model,
            optimizer,
        })
    }

    /// Writes the checkpoint atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut header = self.header.clone();
        header.lengths = [self.model.len(), self.optimizer.len()];
        header.checksum = fnv1a(&[&self.model, &self.optimizer]);
        let json = serde_json::to_string(&header).map_err(|e| AttnError::Value {
            what: "checkpoint header".into(),
            why: e.to_string(),
        })?;
        let mut bytes =
            Vec::with_capacity(MAGIC.len() + json.len() + 1 + header.lengths.iter().sum::<usize>());
        bytes.extend_from_slice(MAGIC.as_bytes());
        bytes.extend_from_slice(json.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(&self.model);
        bytes.extend_from_slice(&self.optimizer);
        write_atomically(path, &bytes)
    }

    /// Reads and verifies a checkpoint: magic line, header, lengths and checksum.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| AttnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let rest = bytes
            .strip_prefix(MAGIC.as_bytes())
            .ok_or_else(|| corrupt(path, "line 1 is not `attnkit-checkpoint 1`"))?;
        let newline = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| corrupt(path, "line 2 (the header) is not terminated"))?;
        let header: CheckpointHeader = serde_json::from_slice(&rest[..newline])
            .map_err(|e| corrupt(path, format!("line 2 (the header): {e}")))?;
        let payload = &rest[newline + 1..];
        let [m, o] = header.lengths;
        if payload.len() != m + o {
            return Err(corrupt(
                path,
                format!(
                    "expected {} payload bytes after the header, found {} (truncated?)",
                    m + o,
                    payload.len()
                ),
            ));
        }
        let (model, optimizer) = payload.split_at(m);
        let sum = fnv1a(&[model, optimizer]);
        if sum != header.checksum {
            return Err(corrupt(
                path,
                format!(
                    "checksum {sum} does not match the header's {}",
                    header.checksum
                ),
            ));
        }
        Ok(Self {
            header,
            model: model.to_vec(),
            optimizer: optimizer.to_vec(),
        })
    }

    /// Loads the model parameters into `model`, which must have the same structure.
    pub fn load_model<M: Module>(&self, model: M, path: &Path) -> Result<M> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| corrupt(path, format!("model parameters: {e:?}")))?;
        model
            .try_load_record(record)
            .map_err(|e| AttnError::Format {
                path: path.to_path_buf(),
                why: format!("the checkpoint's model does not fit this model: {e:?}"),
            })
    }

    /// Refuses a checkpoint of another task or configuration.
    pub fn check_matches(&self, task: &str, config: &Value, path: &Path) -> Result<()> {
        if self.header.task != task {
            return Err(AttnError::Format {
                path: path.to_path_buf(),
                why: format!(
                    "checkpoint of task `{}`, expected `{task}`",
                    self.header.task
                ),
            });
        }
        if &self.header.config != config {
            return Err(AttnError::Format {
                path: path.to_path_buf(),
                why: format!(
                    "checkpoint configuration {} differs from this run's {config}",
                    self.header.config
                ),
            });
        }
        Ok(())
    }
}
