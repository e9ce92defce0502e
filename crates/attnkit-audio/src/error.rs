//! The error type of the audio crate.

use std::path::PathBuf;

pub use attnkit_formats::FormatError;

/// What went wrong with audio: every file error names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A request that cannot be met (a rate of 0, a frame that is not twice the hop).
    #[error("config: {0}")]
    Config(String),
    /// A file that is not a WAV file attnkit can read, or one that is empty or
    /// truncated.
    #[error("{}: {why}", path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// What is wrong, with what was expected and what was found.
        why: String,
    },
    /// Input of the wrong length or shape for a transform or a score.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// The argument.
        what: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// Writing failed (the file error every attnkit crate shares).
    #[error(transparent)]
    File(#[from] FormatError),
}

/// `Result` with [`AudioError`].
pub type Result<T> = std::result::Result<T, AudioError>;
