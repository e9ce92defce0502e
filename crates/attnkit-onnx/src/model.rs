//! Writing and reading model files.

use std::path::Path;

use prost::Message;

use crate::error::{OnnxError, Result};
use crate::proto::ModelProto;

/// Writes `model` to `path` atomically (a temporary file, then a rename): a failed
/// or interrupted export never leaves a partial file under the real name.
///
/// # Errors
///
/// [`OnnxError::Attn`] wrapping the I/O error, naming the file (a file already at
/// `path` stays as it was).
pub fn save_model(model: &ModelProto, path: &Path) -> Result<()> {
    Ok(attnkit::store::write_atomically(
        path,
        &model.encode_to_vec(),
    )?)
}

/// Reads an ONNX file written by [`save_model`] (or any other exporter).
///
/// # Errors
///
/// [`OnnxError::Io`] if the file cannot be read, [`OnnxError::Decode`] if it is not an ONNX
/// protobuf.
pub fn decode_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ModelProto::decode(bytes.as_slice()).map_err(|e| OnnxError::Decode {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}
