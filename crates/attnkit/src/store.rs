//! Named float32 tensors in safetensors files, and how modules map their parameters to
//! PyTorch's names.
//!
//! Files are read whole and checked before anything is used (by `attnkit-formats`,
//! which this module puts Burn tensors on): a file that is not safetensors, holds a
//! tensor that is not float32, or declares a shape of more than 2^31 elements
//! ([`attnkit_formats::MAX_TENSOR_ELEMENTS`]) is refused with the file's name.
//! Files are written atomically (a temporary file beside the target, then a rename), so
//! a crash never leaves half a file under the real name.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;

use crate::error::{AttnError, FormatError, Result, check_shape};

/// One float32 tensor: its shape and its row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl StoredTensor {
    /// A tensor from its shape and values.
    ///
    /// # Errors
    ///
    /// [`AttnError::Value`] if the values do not fill the shape exactly.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if n != Some(data.len()) {
            let needs = n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            return Err(AttnError::Value {
                what: "tensor".into(),
                why: format!("shape {shape:?} needs {needs} values, got {}", data.len()),
            });
        }
        Ok(Self { shape, data })
    }

    /// Copies a Burn tensor to the host.
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = tensor
            .try_into_vec_as::<f32>()
            .expect("float tensors read back as f32");
        Self { shape, data }
    }

    /// This tensor on `device`, checked to have rank `D`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if the tensor's rank is not `D`.
    pub fn to_tensor<const D: usize>(&self, what: &str, device: &Device) -> Result<Tensor<D>> {
        if self.shape.len() != D {
            return Err(AttnError::Shape {
                what: what.to_string(),
                expected: format!("rank {D}"),
                got: self.shape.clone(),
            });
        }
        Ok(Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        ))
    }
}

/// A set of named float32 tensors with string metadata, as a safetensors file holds them.
#[derive(Debug, Clone, Default)]
pub struct TensorStore {
    tensors: BTreeMap<String, StoredTensor>,
    metadata: BTreeMap<String, String>,
    source: String,
}

impl TensorStore {
    /// An empty store; `source` names it in errors (a file name, or e.g. "outputs").
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Reads a safetensors file. Every tensor must be float32.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] if the file cannot be read, [`AttnError::File`] as
    /// [`TensorStore::from_bytes`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| {
            AttnError::File(FormatError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses safetensors bytes; `path` names them in errors.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] naming `path` when the bytes are not valid safetensors, a
    /// tensor is not float32, or a declared shape is absurd (more than 2^31 elements,
    /// counting the non-zero dimensions of an empty tensor, or more than its data
    /// offsets hold).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let decoded = attnkit_formats::decode_f32_safetensors(bytes, path)?;
        Ok(Self {
            tensors: decoded
                .arrays
                .into_iter()
                .map(|(name, a)| {
                    let t = StoredTensor {
                        shape: a.shape,
                        data: a.data,
                    };
                    (name, t)
                })
                .collect(),
            metadata: decoded.metadata,
            source: path.display().to_string(),
        })
    }

    /// The safetensors encoding of this store.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] naming the store's source if a tensor's values do not
    /// fill its shape (which [`TensorStore::insert`] already refuses).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let arrays = self
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.shape.as_slice(), t.data.as_slice()));
        Ok(attnkit_formats::encode_f32_safetensors(
            arrays,
            &self.metadata,
            Path::new(&self.source),
        )?)
    }

    /// Writes the store to `path` atomically: a temporary file in the same folder,
    /// flushed, then renamed over `path`. On error a file already at `path` stays as it was, and no partial file is left.
    ///
    /// # Errors
    ///
    /// As [`TensorStore::to_bytes`] and [`write_atomically`].
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomically(path, &self.to_bytes()?)
    }

    /// Adds (or replaces) a tensor.
    ///
    /// # Errors
    ///
    /// [`AttnError::Value`] if the values do not fill the shape exactly.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<()> {
        let t = StoredTensor::new(shape, data)?;
        self.tensors.insert(name.into(), t);
        Ok(())
    }

    /// Adds (or replaces) a tensor copied from a Burn tensor.
    pub fn insert_tensor<const D: usize>(&mut self, name: impl Into<String>, tensor: Tensor<D>) {
        self.tensors
            .insert(name.into(), StoredTensor::from_tensor(tensor));
    }

    /// Sets a metadata entry.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// The metadata entries.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// The tensor called `name`.
    ///
    /// # Errors
    ///
    /// [`AttnError::MissingTensor`] listing the tensors the store does have.
    pub fn require(&self, name: &str) -> Result<&StoredTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| AttnError::MissingTensor {
                file: self.source.clone(),
                name: name.to_string(),
                available: if self.tensors.is_empty() {
                    "no tensors".to_string()
                } else {
                    self.names().collect::<Vec<_>>().join(", ")
                },
            })
    }

    /// The tensor `name` on `device`, checked against `expected` (`None` = any size);
    /// `dims` names the dimensions for the error message.
    ///
    /// # Errors
    ///
    /// [`AttnError::MissingTensor`] if it is absent, [`AttnError::Shape`] if its shape
    /// is not `expected`.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        expected: [Option<usize>; D],
        dims: [&str; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let t = self.require(name)?;
        check_shape(&self.describe(name), &t.shape, &expected, &dims)?;
        t.to_tensor(name, device)
    }

    /// The tensor `name` on the host, checked against `expected` (`None` = any size).
    ///
    /// # Errors
    ///
    /// As [`TensorStore::tensor`].
    pub fn checked(
        &self,
        name: &str,
        expected: &[Option<usize>],
        dims: &[&str],
    ) -> Result<&StoredTensor> {
        let t = self.require(name)?;
        check_shape(&self.describe(name), &t.shape, expected, dims)?;
        Ok(t)
    }

    /// Like [`TensorStore::tensor`] for a tensor that may be absent.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if it is present with a shape other than `expected`.
    pub fn optional_tensor<const D: usize>(
        &self,
        name: &str,
        expected: [Option<usize>; D],
        dims: [&str; D],
        device: &Device,
    ) -> Result<Option<Tensor<D>>> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.tensor(name, expected, dims, device).map(Some),
        }
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the store holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Where the tensors came from (for messages).
    pub fn source(&self) -> &str {
        &self.source
    }

    fn describe(&self, name: &str) -> String {
        format!("{}: tensor `{name}`", self.source)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// so a crash never leaves half a file under `path`.
///
/// # Errors
///
/// [`AttnError::File`] naming the file the operating system refused.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(attnkit_formats::write_atomically(path, bytes)?)
}

/// Modules whose parameters load from and save to tensors named as in PyTorch.
pub trait TorchWeights: Sized {
    /// Replaces every parameter by the tensor `prefix + name` of `store`, checking shapes.
    ///
    /// # Errors
    ///
    /// [`AttnError::MissingTensor`] for an absent weight, [`AttnError::Shape`] for one
    /// whose shape is not the parameter's.
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self>;
    /// Writes every parameter into `store` as `prefix + name`.
    fn save_weights(&self, store: &mut TensorStore, prefix: &str);
}

/// Replaces `param`'s value with tensor `name` of `store`, which must have the same shape.
pub(crate) fn load_param<const D: usize>(
    param: Param<Tensor<D>>,
    store: &TensorStore,
    name: &str,
) -> Result<Param<Tensor<D>>> {
    let value = param.val();
    let want = value.dims();
    let device = value.device();
    let t = store.require(name)?;
    if t.shape != want {
        return Err(AttnError::Shape {
            what: format!("{}: weight `{name}`", store.source()),
            expected: format!("{want:?}"),
            got: t.shape.clone(),
        });
    }
    let tensor = t.to_tensor::<D>(name, &device)?;
    Ok(param.map(|_| tensor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder, removed when dropped.
    fn temp_dir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("attnkit-store-{tag}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn round_trip_keeps_values_shapes_and_metadata() {
        let dir_tmp = temp_dir("rt");
        let dir = dir_tmp.path();
        let mut s = TensorStore::new("test");
        s.insert(
            "a.weight",
            vec![2, 3],
            vec![1.0, -2.0, 3.5, 0.0, f32::MIN, f32::MAX],
        )
        .unwrap();
        s.insert("b", vec![0], vec![]).unwrap();
        s.set_metadata("torch_version", "x");
        let path = dir.join("w.safetensors");
        s.save(&path).unwrap();
        let back = TensorStore::load(&path).unwrap();
        assert_eq!(back.get("a.weight"), s.get("a.weight"));
        assert_eq!(back.get("b").unwrap().shape, vec![0]);
        assert_eq!(back.metadata().get("torch_version").unwrap(), "x");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn garbage_and_wrong_dtype_are_refused_with_the_file_name() {
        use safetensors::Dtype;
        let err =
            TensorStore::from_bytes(b"not safetensors", Path::new("x.safetensors")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.safetensors: not a valid safetensors file"),
            "{err}"
        );
        let raw = [0u8; 8];
        let view = safetensors::tensor::TensorView::new(Dtype::F64, vec![1], &raw).unwrap();
        let bytes = safetensors::serialize([("t", view)], None).unwrap();
        let err = TensorStore::from_bytes(&bytes, Path::new("y.safetensors")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "y.safetensors: tensor `t`: expected dtype F32 (float32), got F64"
        );
    }

    #[test]
    fn a_shape_whose_size_overflows_is_refused() {
        let err = StoredTensor::new(vec![1 << 40, 1 << 40], vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor: shape [1099511627776, 1099511627776] needs more than 2^64 values, got 0"
        );
    }

    #[test]
    fn missing_tensor_lists_what_is_there() {
        let mut s = TensorStore::new("w.safetensors");
        s.insert("x", vec![1], vec![0.0]).unwrap();
        let err = s.require("y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "w.safetensors: missing tensor `y` (the file has: x)"
        );
    }

    #[test]
    fn shape_check_names_dimensions() {
        let mut s = TensorStore::new("in.safetensors");
        s.insert("query", vec![2, 3], vec![0.0; 6]).unwrap();
        let err = s
            .tensor::<3>(
                "query",
                [Some(2), None, Some(4)],
                ["B", "L", "E"],
                &Device::flex(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.safetensors: tensor `query`: expected shape [B=2, L, E=4], got [2, 3]"
        );
    }

    #[test]
    fn failed_save_leaves_nothing() {
        let dir_tmp = temp_dir("fail");
        let dir = dir_tmp.path();
        let target = dir.join("no-such-dir").join("w.safetensors");
        let s = TensorStore::new("t");
        assert!(s.save(&target).is_err());
        assert!(!target.exists());
    }
}
