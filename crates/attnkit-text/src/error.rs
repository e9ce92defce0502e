//! The error type of the text loaders.

use std::path::PathBuf;

pub use attnkit_formats::FormatError;

/// A file that cannot be read or does not follow its format. Every variant names the
/// file; `Data` also names the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A request that cannot be met (a fraction out of range, a missing folder).
    #[error("config: {0}")]
    Config(String),
    /// A file or folder cannot be read, or does not have the expected layout: the
    /// file error every attnkit crate shares.
    #[error(transparent)]
    File(#[from] FormatError),
    /// A data file (GloVe vectors, a review) is malformed at a line (1-based).
    #[error("{}:{line}: {why}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// `Result` with [`TextError`].
pub type Result<T> = std::result::Result<T, TextError>;
