//! Any bytes as a safetensors file of float32 tensors: a one-line error naming the
//! file, or tensors whose values fill their shapes within the size limit and that
//! encode and decode back to themselves bit for bit.
#![no_main]

use std::path::Path;

use attnkit_formats::{FormatError, check_extent, decode_f32_safetensors, encode_f32_safetensors};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    match decode_f32_safetensors(data, path) {
        Ok(file) => {
            let mut values = 0;
            for (name, array) in &file.arrays {
                let n = check_extent(&array.shape).expect("decoded shapes are within the limit");
                assert_eq!(array.data.len(), n, "tensor `{name}`");
                values += n;
            }
            // Every value came from the file's bytes.
            assert!(values * 4 <= data.len());
            let arrays = file
                .arrays
                .iter()
                .map(|(name, a)| (name.as_str(), a.shape.as_slice(), a.data.as_slice()));
            let bytes = encode_f32_safetensors(arrays, &file.metadata, path)
                .expect("decoded tensors encode");
            let back = decode_f32_safetensors(&bytes, path).expect("an encoding decodes");
            assert_eq!(back.metadata, file.metadata);
            assert_eq!(back.arrays.len(), file.arrays.len());
            for ((n1, a1), (n2, a2)) in file.arrays.iter().zip(&back.arrays) {
                assert_eq!(n1, n2);
                assert_eq!(a1.shape, a2.shape);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a1.data), bits(&a2.data), "tensor `{n1}`");
            }
        }
        Err(FormatError::Format { path: p, why }) => {
            assert_eq!(p, path);
            assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
