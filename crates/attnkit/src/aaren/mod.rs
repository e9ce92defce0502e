//! Attention as an RNN (Aaren; Feng et al. 2024, arXiv 2405.13956).
//!
//! Softmax attention of a learned, input-independent query over the tokens seen so far
//! is a recurrence with a fixed-size state (m, c, a). This module computes it four ways,
//! all giving the same numbers up to rounding:
//!
//! | what | where | cost for L tokens |
//! | --- | --- | --- |
//! | recurrent cell, token by token (Fig. 2) | [`AarenCell::step`], [`AarenCell::forward_iterative`] | L sequential steps |
//! | closed form for the last output only | [`AarenCell::forward_last`], [`scan::last_output`] | one softmax |
//! | parallel prefix scan, all outputs, differentiable | [`AarenCell::forward_parallel`], [`scan::prefix_attention`] | ⌈log₂ L⌉ parallel steps |
//! | constant-memory stream on the kernels | [`TokenStream`] | one step per token, no allocation |
//!
//! The layer [`Aaren`] adds the output projection and runs either form; an
//! [`AarenEncoderBlock`] uses it in place of self-attention, and blocks stack into an
//! [`AarenEncoder`].
//!
//! ```
//! use attnkit::aaren::{AarenConfig, AarenMode};
//! use burn::prelude::*;
//!
//! let device = Device::flex();
//! let layer = AarenConfig::new(8, 2).init(&device)?;
//! let x = Tensor::<3>::random([1, 6, 8], burn::tensor::Distribution::Default, &device);
//! let parallel = layer.forward(x.clone(), None)?;
//! // The same layer token by token, in two chunks, keeping only the state between them.
//! let mut stream = layer.stream(1);
//! let first = stream.push(x.clone().narrow(1, 0, 4), None)?;
//! let second = stream.push(x.narrow(1, 4, 2), None)?;
//! let chunked = Tensor::cat(vec![first, second], 1);
//! let diff: f32 = (parallel - chunked).abs().max().into_scalar();
//! assert!(diff < 1e-5);
//! assert_eq!(stream.state().num_elements(), 1 * 2 * (4 + 2));
//! # Ok::<(), attnkit::AttnError>(())
//! ```

pub mod block;
pub mod cell;
mod fused;
pub mod kernel_stream;
pub mod layer;
pub mod scan;
pub mod scan_operation;
pub mod state;

pub use block::{AarenEncoder, AarenEncoderBlock, AarenEncoderConfig};
pub use cell::{AarenCell, AarenCellConfig};
pub use fused::prefix_attention_fused;
pub use kernel_stream::{FoldedAaren, TokenStream};
pub use layer::{Aaren, AarenConfig, AarenLayerStream, AarenMode};
pub use scan::{ScanElements, inclusive_scan, last_output, prefix_attention};
pub use state::AarenState;
