//! The error type of the `attnkit` library.

pub use attnkit_formats::FormatError;

/// Everything the library refuses, each naming what was expected and what was found.
///
/// A file that cannot be read or does not hold what it should is one error type across
/// the crates, [`FormatError`] (`Io`: the operating system refused; `Format`: the bytes
/// are wrong), declared once in `attnkit-formats`:
/// - the library's own files (safetensors weights and inputs, checkpoints, fixture
///   cases, anything written with [`crate::store::write_atomically`]) fail as
///   [`AttnError::File`];
/// - text data files (GloVe vectors, review folders) fail as [`AttnError::Text`],
///   which carries [`attnkit_text::TextError`] unchanged: its file errors are the same
///   [`FormatError`], and a malformed line also gets its 1-based number.
///
/// Every message is one line and names the file where there is one.
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
    /// One of the library's files cannot be read or written, or does not hold what it
    /// should: not valid safetensors, a dtype other than float32, an absurd shape, a
    /// damaged checkpoint or one of another task or configuration, a fixture case file
    /// lacking a field.
    #[error(transparent)]
    File(#[from] FormatError),
    /// A text data file (GloVe vectors, a review folder) is unreadable or malformed;
    /// the message names the file and, for a malformed line, its 1-based number.
    #[error(transparent)]
    Text(#[from] attnkit_text::TextError),
    /// A JSON configuration does not parse; line and column are 1-based.
    #[error("{source_name}: invalid JSON at line {line}, column {column}: {why}")]
    Json {
        /// The file the configuration came from, or `inline config` for one given as
        /// text.
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

/// The element count of a parameter or result of shape `dims` (described by `what`),
/// checked against the limit of one tensor ([`attnkit_formats::MAX_TENSOR_ELEMENTS`],
/// 2^31 elements) before anything is allocated. Compute dimensions with
/// `saturating_mul`: a saturated dimension is still refused.
pub(crate) fn check_size(what: &str, dims: &[usize]) -> Result<usize> {
    attnkit_formats::check_elements(dims).map_err(|e| AttnError::Config(format!("{what}: {e}")))
}

/// Like [`check_size`] for a result whose size the inputs set (attention weights
/// `[B, H, Lq, Lk]`, say): an [`AttnError::Value`] naming `what`.
pub(crate) fn check_result_size(what: &str, dims: &[usize]) -> Result<usize> {
    attnkit_formats::check_elements(dims).map_err(|e| AttnError::Value {
        what: what.to_string(),
        why: e.to_string(),
    })
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
