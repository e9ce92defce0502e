//! An Aaren layer on the dependency-free kernels: one token at a time, no allocation per
//! token, the state a fixed `Vec` — what a small device runs.
//!
//! [`TokenStream::new`] folds a trained [`Aaren`] layer's weights once
//! ([`attnkit_kernels::aaren::fold_query`]); each [`TokenStream::push`] is then one
//! dot product of length E per head for the score, an E×E matrix–vector product for the
//! value and one for the output projection. The same code builds for `no_std` targets
//! from `attnkit-kernels` alone.

use attnkit_kernels::Real;
use attnkit_kernels::aaren::{AarenLayerWeights, AarenStream, fold_query, state_len, step_layer};

use super::layer::Aaren;
use crate::error::{AttnError, Result};

/// An Aaren layer's weights folded for streaming, in precision `T`.
#[derive(Debug, Clone)]
pub struct FoldedAaren<T> {
    embed: usize,
    heads: usize,
    key_query: Vec<T>,
    score_bias: Vec<T>,
    value_weight: Vec<T>,
    value_bias: Vec<T>,
    out_weight: Vec<T>,
    out_bias: Vec<T>,
    /// Forgetting rates λ_h (empty for the paper's Aaren).
    decay: Vec<T>,
}

fn values<T: Real>(what: &str, t: burn::Tensor<1>) -> Result<Vec<T>> {
    let v: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| AttnError::Value {
            what: what.to_string(),
            why: format!("cannot read the tensor: {e:?}"),
        })?;
    Ok(v.into_iter().map(|x| T::from_f64(x as f64)).collect())
}

impl<T: Real> FoldedAaren<T> {
    /// Folds `layer`'s weights (read as float32, converted to `T`).
    ///
    /// # Errors
    ///
    /// [`AttnError::Kernel`] if the layer's widths cannot be folded (which its config
    /// already refuses); [`AttnError::Value`] if a weight cannot be read back as float32.
    pub fn from_layer(layer: &Aaren) -> Result<Self> {
        let e = layer.embed_dim();
        let h = layer.num_heads();
        let cell = &layer.cell;
        let w_in: Vec<T> = values(
            "in_proj_weight",
            cell.in_proj_weight.val().reshape([3 * e * e]),
        )?;
        let b_in: Vec<T> = values("in_proj_bias", cell.in_proj_bias.val())?;
        let query: Vec<T> = values("query", cell.query.val())?;
        let mut key_query = vec![T::ZERO; h * e];
        let mut score_bias = vec![T::ZERO; h];
        fold_query(e, h, &query, &w_in, &b_in, &mut key_query, &mut score_bias)?;
        let out_weight = values(
            "out_proj.weight",
            layer.out_proj.weight.val().reshape([e * e]),
        )?;
        let out_bias = match &layer.out_proj.bias {
            Some(b) => values("out_proj.bias", b.val())?,
            None => vec![T::ZERO; e],
        };
        let decay = match cell.decay_rates() {
            Some(rates) => values("log_decay", rates)?,
            None => Vec::new(),
        };
        Ok(Self {
            embed: e,
            heads: h,
            decay,
            key_query,
            score_bias,
            value_weight: w_in[2 * e * e..].to_vec(),
            value_bias: b_in[2 * e..].to_vec(),
            out_weight,
            out_bias,
        })
    }

    /// The kernels' view of the weights.
    pub fn weights(&self) -> AarenLayerWeights<'_, T> {
        AarenLayerWeights {
            embed: self.embed,
            heads: self.heads,
            key_query: &self.key_query,
            score_bias: &self.score_bias,
            value_weight: &self.value_weight,
            value_bias: &self.value_bias,
            out_weight: &self.out_weight,
            out_bias: &self.out_bias,
        }
    }
}

/// One sequence streamed token by token through a folded Aaren layer.
#[derive(Debug, Clone)]
pub struct TokenStream<T> {
    folded: FoldedAaren<T>,
    state: Vec<T>,
    scratch: Vec<T>,
    out: Vec<T>,
    tokens: u64,
}

impl<T: Real> TokenStream<T> {
    /// A stream through `layer`, starting from the empty prefix.
    ///
    /// # Errors
    ///
    /// As [`FoldedAaren::from_layer`].
    pub fn new(layer: &Aaren) -> Result<Self> {
        let folded = FoldedAaren::from_layer(layer)?;
        let (e, h) = (folded.embed, folded.heads);
        let mut state = vec![T::ZERO; state_len(h, e / h)];
        AarenStream::new(h, e / h, &mut state)?;
        Ok(Self {
            folded,
            state,
            scratch: vec![T::ZERO; 2 * e],
            out: vec![T::ZERO; e],
            tokens: 0,
        })
    }

    /// Feeds one token `x` `[E]` (`masked`: padding, the state is kept) and returns the
    /// layer's output for it, `[E]`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Kernel`] if `x` does not hold E numbers.
    pub fn push(&mut self, x: &[T], masked: bool) -> Result<&[T]> {
        let (e, h) = (self.folded.embed, self.folded.heads);
        // Forgetting: every earlier token is one step older, m − λ (m = −∞ stays −∞).
        for (st, rate) in self.state.chunks_mut(e / h + 2).zip(&self.folded.decay) {
            st[0] -= *rate;
        }
        let mut stream = AarenStream::resume(h, e / h, &mut self.state)?;
        step_layer(
            &self.folded.weights(),
            &mut stream,
            x,
            masked,
            &mut self.scratch,
            &mut self.out,
        )?;
        self.tokens += 1;
        Ok(&self.out)
    }

    /// The state `[H][m, c, a_0..a_{d−1}]`: H·(d + 2) numbers, whatever the tokens fed.
    pub fn state(&self) -> &[T] {
        &self.state
    }

    /// Tokens fed so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}
