//! The fused inference path of multi-head attention: the three projections, then the
//! tiled attention kernel reading Q, K, V by strides and writing the heads side by side
//! for the output projection, with no weights tensor.

use burn::prelude::*;

use super::MultiHeadAttention;
use crate::attention::mask::AttentionMask;
use crate::attention::scaled_dot_product::f32_slice;
use crate::attention::tiled::{HeadLayout, TiledAttention};
use crate::error::Result;
use crate::layers::linear::torch_linear;

impl MultiHeadAttention {
    /// [`forward_context`](Self::forward_context); `key_value: None` means self-attention.
    pub(super) fn context(
        &self,
        query: Tensor<3>,
        key_value: Option<(Tensor<3>, Tensor<3>)>,
        mask: &AttentionMask,
    ) -> Result<Tensor<3>> {
        if query.device().is_autodiff() || !crate::device::uses_cpu_kernels(&query) {
            let (key, value) = key_value.unwrap_or_else(|| (query.clone(), query.clone()));
            return Ok(self.forward(query, key, value, mask)?.output);
        }
        let (e, h) = (self.embed_dim, self.num_heads);
        let d = e / h;
        let [b, lq, _] = query.dims();
        let device = query.device();
        let w = self.in_proj_weight.val();
        let bias = self.in_proj_bias.as_ref().map(|p| p.val());
        // Q, K and V token-major, [B, L, E] with the heads side by side: the kernel reads
        // them by strides. Self-attention projects three times rather than once by the
        // whole [3E, E] weight: the same work, but a [B, L, 3E] result is large enough
        // (12.6 MB at B 4, L 512, E 512) for the allocator to map it fresh on every call,
        // and its page faults took 5% of the time.
        let (key, value) = key_value.unwrap_or_else(|| (query.clone(), query.clone()));
        self.check_inputs(&query, &key, &value)?;
        let lk = key.dims()[1];
        let project = |x: Tensor<3>, block: usize| {
            let wb = w.clone().slice([block * e..(block + 1) * e, 0..e]);
            let bb = bias.clone().map(|b| b.narrow(0, block * e, e));
            torch_linear(x, wb, bb).into_data()
        };
        let (q, k, v) = (project(query, 0), project(key, 1), project(value, 2));
        let key_padding = mask.host_key_padding(b, lk)?;
        let context = TiledAttention {
            query: f32_slice(&q, "query")?,
            query_layout: HeadLayout::token_major(lq, e, 0, d),
            key: f32_slice(&k, "key")?,
            key_layout: HeadLayout::token_major(lk, e, 0, d),
            value: f32_slice(&v, "value")?,
            value_layout: HeadLayout::token_major(lk, e, 0, d),
            batch: b,
            heads: h,
            len_q: lq,
            len_k: lk,
            dim: d,
            value_dim: d,
            scale: self.scale() as f32,
            key_padding: key_padding.as_deref(),
            causal: mask.causal,
        }
        .run();
        self.out_proj.forward(Tensor::from_data(
            TensorData::new(context, [b, lq, e]),
            &device,
        ))
    }
}
