//! attnkit: attention mechanisms, recurrent baselines and Attention as an RNN on Burn.
//!
//! Modules follow Burn's conventions (a `…Config` with documented defaults, `init`, a
//! module struct, `forward`), keep PyTorch's parameter names and layouts so weights move
//! between the two ([`store::TorchWeights`]), and return [`AttnError`] instead of
//! panicking on a bad shape or configuration. Every module is tested against the
//! dependency-free oracle in `attnkit-kernels` and against fixtures written by PyTorch.
//!
//! ```
//! use attnkit::attention::{AttentionMask, MultiHeadAttentionConfig};
//! use burn::prelude::*;
//!
//! let device = Device::flex();
//! let mha = MultiHeadAttentionConfig::new(16, 4).init(&device)?;
//! let x = Tensor::<3>::random([2, 5, 16], burn::tensor::Distribution::Default, &device);
//! let out = mha.forward_self(x, &AttentionMask::none())?;
//! assert_eq!(out.output.dims(), [2, 5, 16]);
//! assert_eq!(out.mean_weights().dims(), [2, 5, 5]);
//! # Ok::<(), attnkit::AttnError>(())
//! ```

pub mod aaren;
pub mod attention;
pub mod contract;
pub mod data;
pub mod device;
pub mod error;
pub mod layers;
pub mod positional;
pub mod recurrent;
pub mod store;
pub mod tasks;
pub mod train;
pub mod verify;

pub use error::{AttnError, FormatError, Result};

/// The README's Rust examples run as doctests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The Rust examples of `docs/aaren.md` run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/aaren.md")]
struct AarenDocDoctests;

/// The Rust examples of `docs/training.md` run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/training.md")]
struct TrainingDocDoctests;
