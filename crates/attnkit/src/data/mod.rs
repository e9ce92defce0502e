//! Text data: the published GloVe and IMDB (`aclImdb/`) formats, a tokenizer and a
//! vocabulary (DATA-1, DATA-2, DATA-5), and a multi-threaded Burn data loader.
//!
//! Loaders read a whole file or folder before returning, so a bad file is an error that
//! names the file and line and nothing is half loaded.

pub mod glove;
pub mod imdb;
pub mod loader;
pub mod tokenizer;
pub mod vocabulary;

pub use glove::{Glove, Oov};
pub use imdb::{Review, Split, load_reviews};
pub use loader::{ReviewBatch, ReviewBatcher, ReviewDataset, ReviewLoaderConfig};
pub use tokenizer::tokenize;
pub use vocabulary::Vocabulary;
