//! Checkpoints: a model, its optimizer state and the training loop's own state in one
//! file, written atomically and checked when read.
//!
//! Layout: the line `attnkit-checkpoint 1`, one line of JSON (the header: task, config,
//! step, generator state, task state, the lengths and an FNV-1a 64 checksum of the
//! payload), then the payload — the model's parameters and the optimizer's state, each
//! as Burn's burnpack bytes. The file is written to a temporary name and renamed, so an
//! interrupted save leaves the previous checkpoint intact; a truncated or altered file
//! fails the checksum and is refused with its name.
//!
//! The container itself (magic line, header, lengths, checksum) is
//! [`attnkit_formats::checkpoint`], which needs no Burn and is fuzzed; this module adds
//! the Burn parts: a model's parameters in, a model's parameters out.

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde_json::Value;

pub use attnkit_formats::CheckpointHeader;

use crate::error::{AttnError, FormatError, Result};
use crate::store::write_atomically;

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

fn corrupt(path: &Path, why: impl Into<String>) -> AttnError {
    AttnError::File(FormatError::Format {
        path: path.to_path_buf(),
        why: format!("not a valid attnkit checkpoint: {}", why.into()),
    })
}

impl Checkpoint {
    /// A checkpoint of `model` and the given state.
    ///
    /// # Errors
    ///
    /// [`AttnError::Value`] if Burn cannot serialise the model's parameters.
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

    /// Writes the checkpoint atomically (temporary file, then rename), with the
    /// header's lengths and checksum set from the payload.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] if the file cannot be written (a file already at `path` stays as it was).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes =
            attnkit_formats::encode_checkpoint(&self.header, &self.model, &self.optimizer, path)?;
        write_atomically(path, &bytes)
    }

    /// Reads and verifies a checkpoint: magic line, header, lengths and checksum.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] if the file cannot be read; [`AttnError::File`] naming the
    /// file and the first part that is wrong (magic line, header, payload lengths,
    /// checksum).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| {
            AttnError::File(FormatError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        let parts = attnkit_formats::decode_checkpoint(&bytes, path)?;
        Ok(Self {
            header: parts.header,
            model: parts.model,
            optimizer: parts.optimizer,
        })
    }

    /// Loads the model parameters into `model`, which must have the same structure.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] naming `path` if the parameters do not decode or do not
    /// fit `model`.
    pub fn load_model<M: Module>(&self, model: M, path: &Path) -> Result<M> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| corrupt(path, format!("model parameters: {e:?}")))?;
        model.try_load_record(record).map_err(|e| {
            AttnError::File(FormatError::Format {
                path: path.to_path_buf(),
                why: format!("the checkpoint's model does not fit this model: {e:?}"),
            })
        })
    }

    /// Refuses a checkpoint of another task or configuration.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] naming `path`, the checkpoint's task or configuration and
    /// the one expected.
    pub fn check_matches(&self, task: &str, config: &Value, path: &Path) -> Result<()> {
        if self.header.task != task {
            return Err(AttnError::File(FormatError::Format {
                path: path.to_path_buf(),
                // The name comes from the file: escaped, so it cannot break the line.
                why: format!(
                    "checkpoint of task `{}`, expected `{task}`",
                    self.header.task.escape_debug()
                ),
            }));
        }
        if &self.header.config != config {
            return Err(AttnError::File(FormatError::Format {
                path: path.to_path_buf(),
                why: format!(
                    "checkpoint configuration {} differs from this run's {config}",
                    self.header.config
                ),
            }));
        }
        Ok(())
    }
}
