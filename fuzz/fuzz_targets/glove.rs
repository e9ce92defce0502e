//! Any bytes as a GloVe file: a clean error naming the file and a line, or vectors
//! that all have the dimension of the first line.
#![no_main]

use std::path::Path;

use attnkit_text::{Glove, TextError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Glove::from_reader(data, Path::new("fuzz.txt")) {
        Ok(glove) => {
            assert!(glove.dim() > 0 || glove.is_empty());
            assert!(glove.len() <= data.len());
        }
        Err(TextError::Data { path, line, why }) => {
            assert_eq!(path, Path::new("fuzz.txt"));
            assert!(line >= 1 && !why.is_empty());
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
