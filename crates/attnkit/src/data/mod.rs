//! Text data: the published GloVe and IMDB (`aclImdb/`) formats, a tokenizer and a
//! vocabulary, and a multi-threaded Burn data loader.
//!
//! Loaders read a whole file or folder before returning, so a bad file is an error that
//! names the file and line and nothing is half loaded. The parsers live in
//! `attnkit-text` (no Burn), so they can be fuzzed and used on their own; everything is
//! re-exported here.

pub mod loader;

pub use attnkit_text::{
    Glove, Oov, Review, Split, TextError, Vocabulary, glove, imdb, load_reviews, parse_review,
    tokenize, tokenizer, vocabulary,
};
pub use loader::{ReviewBatch, ReviewBatcher, ReviewDataset, ReviewLoaderConfig};
