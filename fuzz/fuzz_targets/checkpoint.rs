//! Any bytes as a checkpoint file: a one-line error naming the file, or a header whose
//! lengths and checksum describe the payload exactly, and which encodes and decodes
//! back to the same parts.
#![no_main]

use std::path::Path;

use attnkit_formats::{FormatError, decode_checkpoint, encode_checkpoint, fnv1a64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ckpt");
    match decode_checkpoint(data, path) {
        Ok(parts) => {
            assert_eq!(
                parts.header.lengths,
                [parts.model.len(), parts.optimizer.len()]
            );
            assert_eq!(
                parts.header.checksum,
                fnv1a64(&[&parts.model, &parts.optimizer])
            );
            assert!(parts.model.len() + parts.optimizer.len() <= data.len());
            let bytes = encode_checkpoint(&parts.header, &parts.model, &parts.optimizer, path)
                .expect("a decoded checkpoint encodes");
            let back = decode_checkpoint(&bytes, path).expect("an encoding decodes");
            assert_eq!(back, parts);
        }
        Err(FormatError::Format { path: p, why }) => {
            assert_eq!(p, path);
            assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
