//! Any text through the tokenizer and a vocabulary: tokens are non-empty and free of
//! separators, and encoding pads or cuts to exactly the asked length with ids in range.
#![no_main]

use attnkit_text::{Vocabulary, tokenize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tokens = tokenize(text);
    for t in &tokens {
        assert!(!t.is_empty());
        assert!(!t.chars().any(char::is_whitespace), "{t:?}");
        assert!(!t.contains("<br"), "{t:?}");
    }
    let vocab = Vocabulary::build(std::iter::once(tokens.as_slice()), 1, 64);
    for max_len in [1, 7, 64] {
        let ids = vocab.encode(&tokens, max_len);
        assert_eq!(ids.len(), max_len);
        assert!(ids.iter().all(|&i| i < vocab.len()));
    }
});
