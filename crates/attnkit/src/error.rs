//! The error type of the `attnkit` library.

use std::path::PathBuf;

/// Everything the library refuses, each naming what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum AttnError {
    /// A tensor has the wrong rank or dimensions.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which tensor (an input name, a weight name).
        what: String,
        /// The expected shape, written with named dimensions, e.g. `[B, Lk]` with B = 2.
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A configuration value is missing, of the wrong type, or out of range.
    #[error("config: {0}")]
    Config(String),
    /// A tensor the module needs is not in the file.
    #[error("{file}: missing tensor `{name}` (the file has: {available})")]
    MissingTensor {
        /// The file searched.
        file: String,
        /// The tensor name expected.
        name: String,
        /// The names the file does have.
        available: String,
    },
    /// A tensor holds values the operation cannot take (a mask that is not 0/1, a NaN).
    #[error("{what}: {why}")]
    Value {
        /// Which tensor.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// The module name is not one this build knows.
    #[error("unknown module `{name}`; expected one of: {known}")]
    UnknownModule {
        /// The name given.
        name: String,
        /// The names known.
        known: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid safetensors file, or holds a dtype other than float32.
    #[error("{}: {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
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
    /// A text data file (GloVe, a review folder) is unreadable or malformed.
    #[error(transparent)]
    Text(#[from] attnkit_text::TextError),
    /// A JSON document does not parse; line and column are 1-based.
    #[error("{source_name}: invalid JSON at line {line}, column {column}: {why}")]
    Json {
        /// The file name, or `--config` for an inline document.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        why: String,
    },
    /// An error from the dependency-free kernels.
    #[error(transparent)]
    Kernel(#[from] attnkit_kernels::KernelError),
}

/// `Result` with [`AttnError`].
pub type Result<T, E = AttnError> = std::result::Result<T, E>;

/// Checks that `got` equals `expected` (use `None` for a dimension that may be anything).
///
/// `names` labels each dimension in the error, e.g. `["B", "Lk"]`.
pub(crate) fn check_shape(
    what: &str,
    got: &[usize],
    expected: &[Option<usize>],
    names: &[&str],
) -> Result<()> {
    let ok = got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|(g, e)| e.is_none_or(|e| e == *g));
    if ok {
        return Ok(());
    }
    let dims: Vec<String> = expected
        .iter()
        .zip(names)
        .map(|(e, n)| match e {
            Some(v) => format!("{n}={v}"),
            None => (*n).to_string(),
        })
        .collect();
    Err(AttnError::Shape {
        what: what.to_string(),
        expected: format!("[{}]", dims.join(", ")),
        got: got.to_vec(),
    })
}
