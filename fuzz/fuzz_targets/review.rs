//! Any bytes as a review file: the text when it is UTF-8, otherwise an error naming
//! the file and the line of the first bad byte.
#![no_main]

use std::path::{Path, PathBuf};

use attnkit_text::{TextError, parse_review};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_review(data.to_vec(), PathBuf::from("0_1.txt"), 1) {
        Ok(review) => assert_eq!(review.text.as_bytes(), data),
        Err(TextError::Data { path, line, .. }) => {
            assert!(std::str::from_utf8(data).is_err());
            assert_eq!(path, Path::new("0_1.txt"));
            let newlines = data.iter().filter(|&&b| b == b'\n').count();
            assert!(line >= 1 && line <= newlines + 1);
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
