//! Scaled dot-product attention (Vaswani et al. 2017, eq. 1):
//! Attention(Q, K, V) = softmax(scale · Q·Kᵀ + mask) · V, scale = 1/√D by default.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use super::mask::AttentionMask;
use super::softmax_operation::attention_softmax;
use super::tiled::{HeadLayout, TiledAttention};
use crate::error::{AttnError, Result, check_shape};

/// Configuration of [`ScaledDotProductAttention`].
#[derive(Config, Debug)]
pub struct ScaledDotProductAttentionConfig {
    /// Multiplier of Q·Kᵀ. Default: `None`, meaning 1/√D with D the query/key width.
    #[config(default = "None")]
    pub scale: Option<f64>,
    /// Dropout probability on the attention weights, applied only when training on an
    /// autodiff device. Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Query i attends to keys j <= i only (top-left aligned). Default: false.
    #[config(default = false)]
    pub causal: bool,
}

/// Scaled dot-product attention over batched, multi-head inputs.
#[derive(Module, Debug)]
pub struct ScaledDotProductAttention {
    dropout: Dropout,
    #[module(skip)]
    scale: Option<f64>,
    causal: bool,
}

/// Context vectors and the attention weights that produced them.
#[derive(Debug, Clone)]
pub struct AttentionOutput<const C: usize, const W: usize> {
    /// The attended values.
    pub context: Tensor<C>,
    /// The attention weights (after dropout when training).
    pub weights: Tensor<W>,
}

impl ScaledDotProductAttentionConfig {
    /// Creates the module (it has no parameters; `device` is for symmetry with other layers).
    pub fn init(&self, _device: &Device) -> ScaledDotProductAttention {
        ScaledDotProductAttention {
            dropout: DropoutConfig::new(self.dropout).init(),
            scale: self.scale,
            causal: self.causal,
        }
    }
}

impl ScaledDotProductAttention {
    /// Attends each query to the keys, with an optional key padding mask.
    ///
    /// - `query`: `[B, H, Lq, D]`
    /// - `key`: `[B, H, Lk, D]`
    /// - `value`: `[B, H, Lk, Dv]`
    /// - `key_padding_mask`: `[B, Lk]`, `true` = ignore this key
    /// - returns `context` `[B, H, Lq, Dv]` and `weights` `[B, H, Lq, Lk]`; a query with
    ///   every key masked gets zero weights and a zero context
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(
        &self,
        query: Tensor<4>,
        key: Tensor<4>,
        value: Tensor<4>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<AttentionOutput<4, 4>> {
        let (mask, scale) = self.prepare(&query, &key, &value, key_padding_mask)?;
        attend(query, key, value, &mask, scale, Some(&self.dropout))
    }

    /// The context alone, for inference: the fused, tiled CPU kernel (online softmax over
    /// blocks of keys), so the `[B, H, Lq, Lk]` scores and weights never exist and memory
    /// stays linear in the lengths. On an autodiff device (training) it is
    /// [`forward`](Self::forward) without the weights.
    ///
    /// - `query`: `[B, H, Lq, D]`
    /// - `key`: `[B, H, Lk, D]`
    /// - `value`: `[B, H, Lk, Dv]`
    /// - `key_padding_mask`: `[B, Lk]`, `true` = ignore this key
    /// - returns: the context `[B, H, Lq, Dv]`, [`forward`](Self::forward)'s up to f32
    ///   rounding
    ///
    /// ```
    /// use attnkit::attention::ScaledDotProductAttentionConfig;
    /// use burn::prelude::*;
    ///
    /// let device = Device::flex();
    /// let sdpa = ScaledDotProductAttentionConfig::new().with_causal(true).init(&device);
    /// let qkv = || Tensor::<4>::random([2, 4, 300, 8], burn::tensor::Distribution::Default, &device);
    /// let (q, k, v) = (qkv(), qkv(), qkv());
    /// let fused = sdpa.forward_context(q.clone(), k.clone(), v.clone(), None)?;
    /// let full = sdpa.forward(q, k, v, None)?.context;
    /// assert!(fused.sub(full).abs().max().into_scalar::<f32>() < 1e-5);
    /// # Ok::<(), attnkit::AttnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward_context(
        &self,
        query: Tensor<4>,
        key: Tensor<4>,
        value: Tensor<4>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<Tensor<4>> {
        if query.device().is_autodiff() {
            return Ok(self.forward(query, key, value, key_padding_mask)?.context);
        }
        let (mask, scale) = self.prepare(&query, &key, &value, key_padding_mask)?;
        attend_fused(query, key, value, &mask, scale)
    }

    /// Checks the shapes; returns the mask and the scale.
    fn prepare(
        &self,
        query: &Tensor<4>,
        key: &Tensor<4>,
        value: &Tensor<4>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<(AttentionMask, f64)> {
        let [b, h, _, d] = query.dims();
        check_shape(
            "key",
            &key.dims(),
            &[Some(b), Some(h), None, Some(d)],
            &["B", "H", "Lk", "D"],
        )?;
        let lk = key.dims()[2];
        check_shape(
            "value",
            &value.dims(),
            &[Some(b), Some(h), Some(lk), None],
            &["B", "H", "Lk", "Dv"],
        )?;
        let mut mask = AttentionMask::none().with_causal(self.causal);
        mask.key_padding = key_padding_mask;
        if let Some(p) = &mask.key_padding {
            check_shape(
                "key_padding_mask",
                &p.dims(),
                &[Some(b), Some(lk)],
                &["B", "Lk"],
            )?;
        }
        Ok((mask, self.scale.unwrap_or(1.0 / (d as f64).sqrt())))
    }
}

/// The computation shared by every attention module in this crate; shapes are checked
/// by the caller except the mask's.
pub(crate) fn attend(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: &AttentionMask,
    scale: f64,
    dropout: Option<&Dropout>,
) -> Result<AttentionOutput<4, 4>> {
    // Scale the queries before the product (one multiply per query element instead of
    // per score), in the same order as PyTorch's MultiheadAttention, so f32 results round
    // alike.
    let scores = query.mul_scalar(scale).matmul(key.swap_dims(2, 3));
    // One operation with its own backward pass (vectorised exponentials, one pass each
    // way); f64 falls back to the composed ops inside.
    let weights = attention_softmax(scores, mask.key_padding.as_ref(), mask.causal)?;
    let weights = match dropout {
        Some(d) => d.forward(weights),
        None => weights,
    };
    let context = weights.clone().matmul(value);
    Ok(AttentionOutput { context, weights })
}

/// The inference form of [`attend`]: the context only, by the fused tiled kernel
/// ([`super::tiled`]: online softmax over key blocks, no `[B, H, Lq, Lk]` scores or
/// weights, threads over sequences × query blocks). Falls back to [`attend`] on autodiff
/// devices (training needs the weights) and for float types other than f32. No dropout:
/// callers use it for inference. A query whose keys are all masked gets a zero context,
/// as in [`attend`]; the masks follow [`AttentionMask`] (causal is top-left aligned).
pub(crate) fn attend_fused(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: &AttentionMask,
    scale: f64,
) -> Result<Tensor<4>> {
    if query.device().is_autodiff() || !crate::device::uses_cpu_kernels(&query) {
        return Ok(attend(query, key, value, mask, scale, None)?.context);
    }
    let [b, h, lq, d] = query.dims();
    let lk = key.dims()[2];
    let dv = value.dims()[3];
    let key_padding = mask.host_key_padding(b, lk)?;
    let device = query.device();
    let (q, k, v) = (query.into_data(), key.into_data(), value.into_data());
    let context = TiledAttention {
        query: f32_slice(&q, "query")?,
        query_layout: HeadLayout::head_major(h, lq, d),
        key: f32_slice(&k, "key")?,
        key_layout: HeadLayout::head_major(h, lk, d),
        value: f32_slice(&v, "value")?,
        value_layout: HeadLayout::head_major(h, lk, dv),
        batch: b,
        heads: h,
        len_q: lq,
        len_k: lk,
        dim: d,
        value_dim: dv,
        scale: scale as f32,
        key_padding: key_padding.as_deref(),
        causal: mask.causal,
    }
    .run();
    // The kernel writes [B, Lq, H, Dv]; the heads axis goes back in front as a view.
    Ok(Tensor::<4>::from_data(TensorData::new(context, [b, lq, h, dv]), &device).swap_dims(1, 2))
}

/// The f32 values of host data, or an error naming the operand.
pub(crate) fn f32_slice<'a>(data: &'a TensorData, name: &str) -> Result<&'a [f32]> {
    data.as_slice::<f32>()
        .map_err(|e| AttnError::Config(format!("{name}: expected f32 values: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::reference::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
    use attnkit_kernels::rng::SplitMix64;

    fn random(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (rng.normal() * scale) as f32).collect()
    }

    fn t4(data: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(data.to_vec(), shape), &Device::flex())
    }

    fn max_err(got: Tensor<4>, want: &[f64]) -> f64 {
        let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
        got.iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max)
    }

    /// Burn's SDPA against the f64 oracle, with both masks, at logit magnitudes up to ~1e4.
    #[test]
    fn matches_the_oracle_with_masks() {
        let (b, h, lq, lk, d, dv) = (2, 3, 5, 7, 4, 6);
        for (case, (causal, logit_scale)) in [(false, 1.0), (true, 1.0), (true, 50.0)]
            .into_iter()
            .enumerate()
        {
            let mut rng = SplitMix64::new(case as u64);
            let q = random(&mut rng, b * h * lq * d, logit_scale);
            let k = random(&mut rng, b * h * lk * d, logit_scale);
            let v = random(&mut rng, b * h * lk * dv, 1.0);
            let pad: Vec<bool> = (0..b * lk).map(|i| i % 5 == 3).collect();
            let to64 = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let want = scaled_dot_product_attention(
                &to64(&q),
                &to64(&k),
                &to64(&v),
                SdpaShape {
                    batch: b,
                    heads: h,
                    len_q: lq,
                    len_k: lk,
                    d_k: d,
                    d_v: dv,
                },
                SdpaOptions {
                    scale: None,
                    causal,
                    key_padding_mask: Some(&pad),
                },
            )
            .unwrap();
            let module = ScaledDotProductAttentionConfig::new()
                .with_causal(causal)
                .init(&Device::flex());
            let mask = Tensor::<2, Bool>::from_data(
                TensorData::new(pad.clone(), [b, lk]),
                &Device::flex(),
            );
            let out = module
                .forward(
                    t4(&q, [b, h, lq, d]),
                    t4(&k, [b, h, lk, d]),
                    t4(&v, [b, h, lk, dv]),
                    Some(mask.clone()),
                )
                .unwrap();
            // The fused kernel: the same context without the weights.
            let fused = module
                .forward_context(
                    t4(&q, [b, h, lq, d]),
                    t4(&k, [b, h, lk, d]),
                    t4(&v, [b, h, lk, dv]),
                    Some(mask),
                )
                .unwrap();
            // f32 rounding of logits of size ~logit_scale²·D moves weights by ~1e-7 relative.
            let tol = 1e-5 * logit_scale * logit_scale;
            assert!(max_err(out.context, &want.output) <= tol, "case {case}");
            assert!(max_err(out.weights, &want.weights) <= tol, "case {case}");
            assert!(max_err(fused, &want.output) <= tol, "case {case}: fused");
        }
    }

    #[test]
    fn explicit_scale_is_used() {
        let q = t4(&[1.0, 2.0], [1, 1, 2, 1]);
        let k = t4(&[0.0, 1.0, 2.0], [1, 1, 3, 1]);
        let v = t4(&[10.0, 20.0, 30.0], [1, 1, 3, 1]);
        let out = ScaledDotProductAttentionConfig::new()
            .with_scale(Some(0.0))
            .init(&Device::flex())
            .forward(q, k, v, None)
            .unwrap();
        // Scale 0: uniform weights, context is the mean of the values.
        let ctx: Vec<f32> = out.context.into_data().try_to_vec().unwrap();
        assert_eq!(ctx, [20.0, 20.0]);
    }

    #[test]
    fn dropout_applies_when_training_only() {
        let shape = [1, 1, 4, 8];
        let make = |device: &Device| {
            let q = Tensor::<4>::zeros(shape, device);
            let v = Tensor::<4>::ones([1, 1, 8, 8], device);
            (q, Tensor::<4>::zeros([1, 1, 8, 8], device), v)
        };
        // Zero queries: uniform weights 1/8; with p = 0.5 the kept ones become 1/4.
        let train = Device::flex().autodiff();
        train.seed(3);
        let m = ScaledDotProductAttentionConfig::new()
            .with_dropout(0.5)
            .init(&train);
        let (q, k, v) = make(&train);
        let w: Vec<f32> = m
            .forward(q, k, v, None)
            .unwrap()
            .weights
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(w.iter().all(|x| *x == 0.0 || *x == 0.25), "{w:?}");
        let dropped = w.iter().filter(|x| **x == 0.0).count();
        assert!((4..=28).contains(&dropped), "{dropped} of 32 dropped");
        // Inference device: no dropout.
        let eval = Device::flex();
        let m = ScaledDotProductAttentionConfig::new()
            .with_dropout(0.5)
            .init(&eval);
        let (q, k, v) = make(&eval);
        let w: Vec<f32> = m
            .forward(q, k, v, None)
            .unwrap()
            .weights
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(w.iter().all(|x| *x == 0.125));
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let m = ScaledDotProductAttentionConfig::new().init(&Device::flex());
        let err = m
            .forward(
                Tensor::zeros([1, 2, 3, 4], &Device::flex()),
                Tensor::zeros([1, 2, 5, 3], &Device::flex()),
                Tensor::zeros([1, 2, 5, 4], &Device::flex()),
                None,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key: expected shape [B=1, H=2, Lk, D=4], got [1, 2, 5, 3]"
        );
    }
}
