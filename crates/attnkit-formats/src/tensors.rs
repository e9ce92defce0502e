//! Named float32 arrays in safetensors files: the checks a file passes before any of
//! its numbers are used.
//!
//! A file is refused, with its name, when it is not safetensors, when a tensor is not
//! float32, or when a declared shape is absurd: more than
//! [`MAX_TENSOR_ELEMENTS`](crate::MAX_TENSOR_ELEMENTS)
//! elements, or data offsets that do not hold the bytes the shape needs. Tensors with
//! data can hold no more than the file does; a zero-sized tensor is still held to the
//! limit along its other dimensions (see [`check_extent`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde_json::Value;

use crate::error::{FormatError, Result, one_line};
use crate::limits::check_extent;

/// One float32 array: its shape and its row-major values (`data.len()` is the product
/// of `shape`).
#[derive(Debug, Clone, PartialEq)]
pub struct F32Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// The contents of a safetensors file of float32 tensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct F32Tensors {
    /// The tensors by name.
    pub arrays: BTreeMap<String, F32Array>,
    /// The file's string metadata (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

/// Parses safetensors `bytes` whose tensors must all be float32; `path` names the file
/// in errors.
///
/// # Errors
///
/// [`FormatError::Format`] naming `path` when the bytes are not a valid safetensors
/// file, a tensor's shape has more than [`MAX_TENSOR_ELEMENTS`](crate::MAX_TENSOR_ELEMENTS) elements (or its
/// non-zero dimensions do) or disagrees with its data offsets, or a tensor is not
/// float32.
pub fn decode_f32_safetensors(bytes: &[u8], path: &Path) -> Result<F32Tensors> {
    let format_err = |why: String| FormatError::Format {
        path: path.to_path_buf(),
        why: one_line(why),
    };
    let invalid = |e: SafeTensorError| {
        let why = match e {
            SafeTensorError::ValidationOverflow
            | SafeTensorError::TensorInvalidInfo
            | SafeTensorError::MisalignedSlice => explain_shapes(bytes).unwrap_or(e.to_string()),
            _ => e.to_string(),
        };
        format_err(format!("not a valid safetensors file: {why}"))
    };
    let (n, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    // read_metadata checked that the offsets tile the bytes after the header exactly.
    let data = bytes.get(8 + n..).unwrap_or_default();
    let mut out = F32Tensors::default();
    if let Some(meta) = header.metadata() {
        out.metadata = meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    // By name, so which tensor an error names does not depend on hashing.
    let infos: BTreeMap<String, &safetensors::tensor::TensorInfo> =
        header.tensors().into_iter().collect();
    for (name, info) in infos {
        if info.dtype != Dtype::F32 {
            return Err(format_err(format!(
                "tensor `{name}`: expected dtype F32 (float32), got {:?}",
                info.dtype
            )));
        }
        check_extent(&info.shape).map_err(|e| format_err(format!("tensor `{name}`: {e}")))?;
        let (start, end) = info.data_offsets;
        let raw = data.get(start..end).ok_or_else(|| {
            format_err(format!(
                "tensor `{name}`: data offsets [{start}, {end}] lie outside the {} data bytes",
                data.len()
            ))
        })?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.arrays.insert(
            name,
            F32Array {
                shape: info.shape.clone(),
                data: values,
            },
        );
    }
    Ok(out)
}

/// The safetensors encoding of float32 `arrays` (name, shape, values) and `metadata`;
/// `name` names the data in errors.
///
/// # Errors
///
/// [`FormatError::Format`] naming `name` when an array's values do not fill its shape.
pub fn encode_f32_safetensors<'a, I>(
    arrays: I,
    metadata: &BTreeMap<String, String>,
    name: &Path,
) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = (&'a str, &'a [usize], &'a [f32])>,
{
    let encode_err = |e: SafeTensorError| FormatError::Format {
        path: name.to_path_buf(),
        why: format!("cannot encode: {e}"),
    };
    let raw: Vec<(&str, &[usize], Vec<u8>)> = arrays
        .into_iter()
        .map(|(n, shape, data)| {
            (
                n,
                shape,
                data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = raw
        .iter()
        .map(|(n, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), bytes).map(|v| (*n, v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(encode_err)?;
    let meta: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    safetensors::serialize(views, meta).map_err(encode_err)
}

/// Which tensor of a header that safetensors refused as inconsistent is at fault, and
/// how: its element count against the limit, or the bytes its shape needs against
/// those its offsets hold. `None` when the header cannot be read this far (safetensors'
/// own message then stands).
fn explain_shapes(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..n.checked_add(8)?)?;
    let entries: BTreeMap<String, Value> = serde_json::from_slice(header).ok()?;
    for (name, info) in entries.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype: Dtype = serde_json::from_value(info.get("dtype")?.clone()).ok()?;
        let shape: Vec<usize> = serde_json::from_value(info.get("shape")?.clone()).ok()?;
        let [start, end]: [usize; 2] =
            serde_json::from_value(info.get("data_offsets")?.clone()).ok()?;
        let elements = match check_extent(&shape) {
            Ok(n) => n,
            Err(e) => return Some(format!("tensor `{name}`: {e}")),
        };
        // At most 2^31 elements of at most 64 bits: no overflow.
        let bits = elements * dtype.bitsize();
        let held = end.checked_sub(start);
        if bits % 8 != 0 || held != Some(bits / 8) {
            let needs = if bits % 8 == 0 {
                format!("{} bytes", bits / 8)
            } else {
                format!("{bits} bits (not whole bytes)")
            };
            let held = match held {
                Some(h) => format!("{h} bytes"),
                None => "a negative number of bytes".to_string(),
            };
            return Some(format!(
                "tensor `{name}`: shape {shape:?} of {dtype:?} needs {needs}, \
                 but its data offsets [{start}, {end}] hold {held}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with one tensor whose header is `info` and `data` bytes.
    fn file_with(info: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{\"t\":{info}}}");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn round_trip_keeps_names_shapes_values_and_metadata() {
        let values = [1.0f32, -2.0, f32::MIN, f32::MAX, f32::NAN, 0.0];
        let meta = BTreeMap::from([("torch_version".to_string(), "x".to_string())]);
        let bytes = encode_f32_safetensors(
            [
                ("a", &[2usize, 3][..], &values[..]),
                ("b", &[0][..], &[][..]),
            ],
            &meta,
            Path::new("out"),
        )
        .unwrap();
        let back = decode_f32_safetensors(&bytes, Path::new("w.safetensors")).unwrap();
        assert_eq!(back.metadata, meta);
        assert_eq!(back.arrays["a"].shape, [2, 3]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.arrays["a"].data), bits(&values));
        assert_eq!(back.arrays["b"].shape, [0]);
    }

    #[test]
    fn absurd_shapes_are_refused_with_the_tensor_named() {
        let err = decode_f32_safetensors(
            &file_with(
                r#"{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,4]}"#,
                &[0; 4],
            ),
            Path::new("x.safetensors"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.safetensors: not a valid safetensors file: tensor `t`: shape [4000000000, \
             4000000000]: expected at most 2147483648 (2^31) elements, got 16000000000000000000"
        );
        // Nothing to read, yet dimensions no operation could take.
        let err = decode_f32_safetensors(
            &file_with(
                r#"{"dtype":"F32","shape":[0,4000000000,4000000000],"data_offsets":[0,0]}"#,
                &[],
            ),
            Path::new("x.safetensors"),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "x.safetensors: tensor `t`: shape [0, 4000000000, 4000000000]: expected at most"
            ),
            "{err}"
        );
        let err = decode_f32_safetensors(
            &file_with(
                r#"{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#,
                &[0; 8],
            ),
            Path::new("x.safetensors"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.safetensors: not a valid safetensors file: tensor `t`: shape [3] of F32 needs \
             12 bytes, but its data offsets [0, 8] hold 8 bytes"
        );
    }

    #[test]
    fn garbage_and_wrong_dtype_are_refused_with_the_file_name() {
        let err =
            decode_f32_safetensors(b"not safetensors", Path::new("x.safetensors")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.safetensors: not a valid safetensors file"),
            "{err}"
        );
        let err = decode_f32_safetensors(
            &file_with(
                r#"{"dtype":"F64","shape":[1],"data_offsets":[0,8]}"#,
                &[0; 8],
            ),
            Path::new("y.safetensors"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "y.safetensors: tensor `t`: expected dtype F32 (float32), got F64"
        );
    }

    #[test]
    fn a_name_from_the_file_cannot_break_the_line() {
        // A JSON escape puts a newline into the tensor's name.
        let header = r#"{"a\nb":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let err = decode_f32_safetensors(&bytes, Path::new("y.safetensors")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "y.safetensors: tensor `a\\nb`: expected dtype F32 (float32), got F64"
        );
    }

    #[test]
    fn values_that_do_not_fill_the_shape_cannot_be_encoded() {
        let err = encode_f32_safetensors(
            [("a", &[2usize, 3][..], &[0.0f32; 5][..])],
            &BTreeMap::new(),
            Path::new("outputs"),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("outputs: cannot encode"),
            "{err}"
        );
    }
}
