//! Random and mutated input for the text loaders: whatever the bytes, the GloVe
//! parser and the review loader return a value or an error naming the file and line —
//! they never panic. Property-based (proptest, stable Rust); cargo-fuzz targets are a
//! follow-up.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use attnkit_text::{Glove, Split, load_reviews};
use proptest::prelude::*;

fn glove_like() -> impl Strategy<Value = Vec<u8>> {
    // Valid files with random damage: truncation, byte flips, inserted separators.
    (
        prop::collection::vec(
            ("[a-z]{1,6}", prop::collection::vec(-10.0f32..10.0, 3)),
            1..8,
        ),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    )
        .prop_map(|(rows, flips, cut)| {
            let mut text = String::new();
            for (w, v) in rows {
                text.push_str(&w);
                for x in v {
                    text.push_str(&format!(" {x}"));
                }
                text.push('\n');
            }
            let mut bytes = text.into_bytes();
            for (at, b) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = b;
                }
            }
            let keep = if bytes.is_empty() {
                0
            } else {
                cut % (bytes.len() + 1)
            };
            bytes.truncate(keep);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn glove_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        match Glove::from_reader(&bytes[..], Path::new("g.txt")) {
            Ok(g) => prop_assert!(g.dim() >= 1 && !g.is_empty()),
            Err(e) => prop_assert!(e.to_string().starts_with("g.txt:"), "{}", e),
        }
    }

    #[test]
    fn glove_parser_never_panics_on_damaged_files(bytes in glove_like()) {
        match Glove::from_reader(&bytes[..], Path::new("g.txt")) {
            Ok(g) => prop_assert!(g.dim() >= 1),
            Err(e) => prop_assert!(e.to_string().starts_with("g.txt:"), "{}", e),
        }
    }
}

#[test]
fn review_loader_never_panics_on_random_files() {
    let dir = tempfile::Builder::new()
        .prefix("attnkit-fuzz-imdb-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("aclImdb");
    let mut rng = attnkit_kernels::rng::SplitMix64::new(9);
    for round in 0..30 {
        let _ = std::fs::remove_dir_all(&root);
        for class in ["pos", "neg"] {
            let d = root.join("test").join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..3 {
                let n = rng.below(64) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                std::fs::write(d.join(format!("{i}_{round}.txt")), bytes).unwrap();
            }
        }
        match load_reviews(&root, Split::Test, 0.0, 0) {
            Ok(reviews) => assert_eq!(reviews.len(), 6),
            Err(e) => assert!(e.to_string().contains("not UTF-8"), "{e}"),
        }
    }
}
