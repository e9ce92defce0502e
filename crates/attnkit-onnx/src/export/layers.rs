//! The pieces of the trained networks around the attention blocks: LayerNorm, the
//! feed-forward network, and the two encoder blocks (post-norm, as PyTorch's
//! `TransformerEncoderLayer` and attnkit's `AarenEncoderBlock`).

use attnkit::aaren::AarenMode;
use attnkit::contract::MhaContract;

use super::Context;
use super::aaren::{aaren_block, levels_for};
use super::attention::mha_block;
use crate::builder::{Attr, GraphBuilder};
use crate::error::Result;

/// `LayerNorm` over the last axis with `{prefix}weight` and `{prefix}bias`.
pub(super) fn layer_norm(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    x: &str,
    width: usize,
    epsilon: f32,
) -> Result<String> {
    let gamma = ctx.weight(&format!("{prefix}weight"), &[Some(width)], &["E"])?;
    let beta = ctx.weight(&format!("{prefix}bias"), &[Some(width)], &["E"])?;
    let gamma = g.f32_tensor(&format!("{prefix}weight"), &gamma.shape, &gamma.data);
    let beta = g.f32_tensor(&format!("{prefix}bias"), &beta.shape, &beta.data);
    Ok(g.node(
        "LayerNormalization",
        &[x, &gamma, &beta],
        vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(epsilon))],
    ))
}

/// `linear2(relu(linear1(x)))` with `{prefix}linear1.weight`, … .
pub(super) fn feed_forward(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    x: &str,
    width: usize,
) -> Result<String> {
    let w1 = ctx.weight(
        &format!("{prefix}linear1.weight"),
        &[None, Some(width)],
        &["ff", "E"],
    )?;
    let hidden = w1.shape[0];
    let b1 = ctx.weight(&format!("{prefix}linear1.bias"), &[Some(hidden)], &["ff"])?;
    let w2 = ctx.weight(
        &format!("{prefix}linear2.weight"),
        &[Some(width), Some(hidden)],
        &["E", "ff"],
    )?;
    let b2 = ctx.weight(&format!("{prefix}linear2.bias"), &[Some(width)], &["E"])?;
    let b1_name = format!("{prefix}linear1.bias");
    let b2_name = format!("{prefix}linear2.bias");
    let h = g.linear(
        x,
        &format!("{prefix}linear1.weight"),
        w1,
        Some((&b1_name, b1)),
    );
    let h = g.node("Relu", &[&h], vec![]);
    Ok(g.linear(
        &h,
        &format!("{prefix}linear2.weight"),
        w2,
        Some((&b2_name, b2)),
    ))
}

/// Which token mixer an encoder block uses.
pub(super) enum Mixer {
    /// Multi-head self-attention under `{prefix}self_attn.`.
    Attention,
    /// Aaren under `{prefix}aaren.`, in this form.
    Aaren(AarenMode),
}

/// The sizes of an encoder block.
pub(super) struct BlockShape {
    /// E.
    pub embed_dim: usize,
    /// Heads of the mixer.
    pub num_heads: usize,
    /// The longest sequence (sets Aaren's doubling depth).
    pub max_len: usize,
    /// LayerNorm epsilon.
    pub epsilon: f32,
}

/// `y = norm1(x + mixer(x)); norm2(y + ff(y))` on `[B, L, E]`, no mask.
pub(super) fn encoder_block(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    mixer: Mixer,
    shape: &BlockShape,
    x: &str,
) -> Result<String> {
    let (embed_dim, num_heads) = (shape.embed_dim, shape.num_heads);
    let mixed = match mixer {
        Mixer::Attention => {
            let cfg = MhaContract {
                embed_dim,
                num_heads,
            };
            mha_block(ctx, g, &format!("{prefix}self_attn."), &cfg, x, x, x, None)?.0
        }
        Mixer::Aaren(mode) => aaren_block(
            ctx,
            g,
            &format!("{prefix}aaren."),
            embed_dim,
            num_heads,
            mode,
            levels_for(shape.max_len),
            x,
            None,
        )?,
    };
    let eps = shape.epsilon;
    let sum = g.binary("Add", x, &mixed);
    let y = layer_norm(ctx, g, &format!("{prefix}norm1."), &sum, embed_dim, eps)?;
    let ff = feed_forward(ctx, g, prefix, &y, embed_dim)?;
    let sum = g.binary("Add", &y, &ff);
    layer_norm(ctx, g, &format!("{prefix}norm2."), &sum, embed_dim, eps)
}
