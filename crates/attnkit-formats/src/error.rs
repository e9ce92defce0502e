//! The error type of the file formats.

use std::path::PathBuf;

/// A file that cannot be read or written, or whose bytes do not follow its format.
/// Both variants name the file; messages are one line, saying what was expected and
/// what was found.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The operating system refused to read or write the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid file of the format (or cannot be encoded as one).
    #[error("{}: {why}", path.display())]
    Format {
        /// The file (or, when encoding, the name the data goes by).
        path: PathBuf,
        /// What is wrong: what was expected and what was found.
        why: String,
    },
}

/// `Result` with [`FormatError`].
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// `why` with control characters escaped: names and values in messages come from the
/// file, and one holding a newline must not break the one-line message.
pub(crate) fn one_line(why: String) -> String {
    if !why.chars().any(char::is_control) {
        return why;
    }
    why.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
