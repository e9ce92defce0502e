//! The reference implementation: attention written out loop by loop in `f64`.
//!
//! This is the oracle the Burn modules are tested against. It is deliberately naive —
//! no blocking, no fusion, no tricks beyond the max-subtracting softmax — so that each
//! line can be checked against the formula by eye. Matrices are row-major slices with
//! their dimensions passed alongside; every length is checked and a mismatch is an
//! error naming the buffer, never a panic.
//!
//! | file | what |
//! | --- | --- |
//! | [`linalg`] | matrix product, PyTorch's linear layer, layer normalisation |
//! | [`self_attention`] | single-head self-attention with N(0, 1) weights |
//! | [`sdpa`] | scaled dot-product attention with padding and causal masks |
//! | [`multi_head`] | multi-head attention in PyTorch's layout |
//! | [`aaren`] | prefix softmax attention of one query and the Aaren layer |
//!
//! Everything is re-exported here: `reference::scaled_dot_product_attention` and the rest.

use alloc::vec::Vec;

pub mod aaren;
pub mod linalg;
pub mod multi_head;
pub mod sdpa;
pub mod self_attention;

pub use aaren::{AarenWeights, aaren_layer, prefix_attention};
pub use linalg::{layer_norm, linear, matmul};
pub use multi_head::{MhaShape, MhaWeights, multi_head_attention};
pub use sdpa::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
pub use self_attention::SelfAttention;

/// Output and attention weights of an attention call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionResult {
    /// The attended values.
    pub output: Vec<f64>,
    /// The attention weights (rows sum to 1, or are all 0 where every key is masked).
    pub weights: Vec<f64>,
}

/// Asserts `got` and `want` agree element by element within `tol` (absolute).
#[cfg(test)]
fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
    }
}
