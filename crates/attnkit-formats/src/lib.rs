//! attnkit's own file formats, without a tensor library: float32 arrays by name in
//! safetensors files ([`tensors`]), the checkpoint container ([`checkpoint`]), the size
//! limit every declared shape is checked against ([`limits`]) and atomic writes
//! ([`atomic`]).
//!
//! `attnkit` builds its Burn-facing types (`attnkit::store`, `attnkit::train::Checkpoint`)
//! on these. They stand alone so the binary loaders can be fuzzed without building Burn,
//! and every byte a user hands over is checked here before anything is allocated from
//! it: a bad file is a [`FormatError`] naming the file, never a panic.

pub mod atomic;
pub mod checkpoint;
pub mod error;
pub mod limits;
pub mod tensors;

pub use atomic::write_atomically;
pub use checkpoint::{
    CheckpointHeader, CheckpointParts, decode_checkpoint, encode_checkpoint, fnv1a64,
};
pub use error::{FormatError, Result};
pub use limits::{MAX_TENSOR_ELEMENTS, TooLarge, check_elements, check_extent};
pub use tensors::{F32Array, F32Tensors, decode_f32_safetensors, encode_f32_safetensors};
