//! The error type of the ONNX exporter.

use std::path::PathBuf;

/// Everything that can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// A config, weight or tensor problem found by the core library (names what was
    /// expected and what was got).
    #[error(transparent)]
    Attn(#[from] attnkit::AttnError),
    /// The module or an option cannot be exported.
    #[error("cannot export `{module}`: {why}")]
    Unsupported {
        /// The module asked for.
        module: String,
        /// Why, and what would work instead.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not an ONNX model.
    #[error("{path}: not an ONNX model: {why}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The protobuf decoder's complaint.
        why: String,
    },
}

/// `Result` with [`OnnxError`].
pub type Result<T> = std::result::Result<T, OnnxError>;
