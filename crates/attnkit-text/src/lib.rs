//! Text data without Burn: the published GloVe and IMDB (`aclImdb/`) formats, a
//! tokenizer and a vocabulary. `attnkit::data` re-exports
//! everything here; this crate stands alone so the parsers can be fuzzed (and used)
//! without building a tensor library.
//!
//! Loaders read a whole file or folder before returning, so a bad file is an error that
//! names the file and line and nothing is half loaded.

pub mod error;
pub mod glove;
pub mod imdb;
pub mod tokenizer;
pub mod vocabulary;

pub use error::{FormatError, Result, TextError};
pub use glove::{Glove, Oov};
pub use imdb::{Review, Split, load_reviews, parse_review};
pub use tokenizer::tokenize;
pub use vocabulary::Vocabulary;
