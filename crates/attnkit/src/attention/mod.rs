//! The classic attention mechanisms, each in its own file.
//!
//! | module | what | forward |
//! | --- | --- | --- |
//! | [`additive`] | Bahdanau attention | `[B, Dq]`, `[B, L, Dk]` → context `[B, Dk]`, weights `[B, L]` |
//! | [`luong`] | Luong dot / general / concat | `[B, Dq]`, `[B, L, Dk]` → output `[B, Dq]`, weights `[B, L]` |
//! | [`scaled_dot_product`] | softmax(QKᵀ·scale)V with masks and dropout | `[B, H, Lq, D]`… → `[B, H, Lq, Dv]`, `[B, H, Lq, Lk]` |
//! | [`heads`] | split / combine heads | `[B, L, E]` ↔ `[B, H, L, E/H]` |
//! | [`multi_head`] | `nn.MultiheadAttention`, self and cross | `[B, Lq, E]`, `[B, Lk, E]` → `[B, Lq, E]` |
//! | [`self_attention_block`] | MHA + residual + LayerNorm | `[B, L, E]` → `[B, L, E]` |
//! | [`encoder_layer`] | Transformer encoder layer: MHA and feed-forward, each + residual + LayerNorm | `[B, L, E]` → `[B, L, E]` |
//! | [`simplified`] | self-attention without Q/K/V projections | `[B, L, E]` → `[B, L, E]` |
//! | [`external`] | two linear memories, double normalisation | `[B, N, d]` → `[B, N, d]` |
//!
//! Every softmax goes through [`softmax::masked_softmax`] or, for the `[B, H, Lq, Lk]`
//! scores of scaled dot-product attention, [`softmax_operation::attention_softmax`] (the same
//! function as one operation with its own backward pass): huge logits never overflow and
//! fully masked rows give zeros, never NaN.

pub mod additive;
pub mod encoder_layer;
pub mod external;
pub mod heads;
pub mod luong;
pub mod mask;
pub mod multi_head;
pub mod scaled_dot_product;
pub mod self_attention_block;
pub mod simplified;
pub mod softmax;
pub mod softmax_operation;
mod tiled;

pub use additive::{AdditiveAttention, AdditiveAttentionConfig};
pub use encoder_layer::{TransformerEncoderLayer, TransformerEncoderLayerConfig};
pub use external::{ExternalAttention, ExternalAttentionConfig};
pub use heads::{combine_heads, split_heads};
pub use luong::{LuongAttention, LuongAttentionConfig, LuongOutput, LuongScore, LuongScorer};
pub use mask::{AttentionMask, mask_from_floats};
pub use multi_head::{MultiHeadAttention, MultiHeadAttentionConfig, MultiHeadOutput};
pub use scaled_dot_product::{
    AttentionOutput, ScaledDotProductAttention, ScaledDotProductAttentionConfig,
};
pub use self_attention_block::{SelfAttentionBlock, SelfAttentionBlockConfig};
pub use simplified::{SimplifiedSelfAttention, SimplifiedSelfAttentionConfig};
pub use softmax::masked_softmax;
pub use softmax_operation::attention_softmax;
