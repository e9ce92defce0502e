//! Luong (multiplicative) attention (Luong et al. 2015, arXiv 1508.04025, §3.1).
//!
//! Scores of the decoder state h_t against each encoder state h̄_s:
//! - dot: h_tᵀ·h̄_s
//! - general: h_tᵀ·W_a·h̄_s
//! - concat: v_aᵀ·tanh(W_a·[h_t; h̄_s])
//!
//! a_t = softmax(scores), context c_t = Σ_s a_ts·h̄_s, and the attentional hidden state
//! h̃_t = tanh(W_c·[c_t; h_t]) (eq. 5) is the output.

use burn::prelude::*;

use super::softmax::masked_softmax;
use crate::error::{AttnError, Result, check_shape};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::store::{TensorStore, TorchWeights};

/// Luong's score functions.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum LuongScore {
    /// h_tᵀ·h̄_s (needs Dq = Dk; no parameters).
    Dot,
    /// h_tᵀ·W_a·h̄_s, W_a `[Dq, Dk]`.
    General,
    /// v_aᵀ·tanh(W_a·[h_t; h̄_s]), W_a `[Dq, Dq + Dk]`, v_a `[1, Dq]`.
    Concat,
}

/// Configuration of [`LuongAttention`].
#[derive(Config, Debug)]
pub struct LuongAttentionConfig {
    /// Width of the decoder state Dq.
    pub query_dim: usize,
    /// Width of the encoder states Dk.
    pub key_dim: usize,
    /// The score function. Default: general.
    #[config(default = "LuongScore::General")]
    pub score: LuongScore,
}

/// Luong attention. PyTorch names: `score_proj.weight` (general, concat), `v.weight`
/// (concat), `output_proj.weight` `[Dq, Dk + Dq]` (W_c; all bias-free).
#[derive(Module, Debug)]
pub struct LuongAttention {
    /// W_a (absent for `dot`).
    pub score_proj: Option<TorchLinear>,
    /// v_a (`concat` only).
    pub v: Option<TorchLinear>,
    /// W_c.
    pub output_proj: TorchLinear,
    #[module(skip)]
    score: LuongScore,
    query_dim: usize,
    key_dim: usize,
}

/// Output of [`LuongAttention::forward`].
#[derive(Debug, Clone)]
pub struct LuongOutput {
    /// The attentional hidden state h̃_t = tanh(W_c·[c_t; h_t]), `[B, Dq]`.
    pub output: Tensor<2>,
    /// The context c_t, `[B, Dk]`.
    pub context: Tensor<2>,
    /// The weights a_t, `[B, L]`.
    pub weights: Tensor<2>,
}

impl LuongAttentionConfig {
    /// Creates the module on `device`.
    pub fn init(&self, device: &Device) -> Result<LuongAttention> {
        let (dq, dk) = (self.query_dim, self.key_dim);
        if dq == 0 || dk == 0 {
            return Err(AttnError::Config(format!(
                "query_dim and key_dim must be at least 1, got {dq} and {dk}"
            )));
        }
        if self.score == LuongScore::Dot && dq != dk {
            return Err(AttnError::Config(format!(
                "the dot score needs query_dim = key_dim, got {dq} and {dk}"
            )));
        }
        let bias_free = |i, o| TorchLinearConfig::new(i, o).with_bias(false).init(device);
        let (score_proj, v) = match self.score {
            LuongScore::Dot => (None, None),
            LuongScore::General => (Some(bias_free(dk, dq)), None),
            LuongScore::Concat => (Some(bias_free(dq + dk, dq)), Some(bias_free(dq, 1))),
        };
        Ok(LuongAttention {
            score_proj,
            v,
            output_proj: bias_free(dk + dq, dq),
            score: self.score,
            query_dim: dq,
            key_dim: dk,
        })
    }
}

impl LuongAttention {
    /// Attends the decoder state to the encoder states.
    ///
    /// - `query`: `[B, Dq]`
    /// - `keys`: `[B, L, Dk]`
    /// - `key_padding_mask`: optional `[B, L]`, `true` = ignore
    /// - returns `output` `[B, Dq]`, `context` `[B, Dk]`, `weights` `[B, L]`
    pub fn forward(
        &self,
        query: Tensor<2>,
        keys: Tensor<3>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<LuongOutput> {
        let (dq, dk) = (self.query_dim, self.key_dim);
        check_shape("query", &query.dims(), &[None, Some(dq)], &["B", "Dq"])?;
        let [b, _] = query.dims();
        check_shape(
            "keys",
            &keys.dims(),
            &[Some(b), None, Some(dk)],
            &["B", "L", "Dk"],
        )?;
        let l = keys.dims()[1];
        if let Some(m) = &key_padding_mask {
            check_shape(
                "key_padding_mask",
                &m.dims(),
                &[Some(b), Some(l)],
                &["B", "L"],
            )?;
        }
        let scores = match (self.score, &self.score_proj, &self.v) {
            (LuongScore::Dot, _, _) => dot_scores(query.clone(), keys.clone()),
            (LuongScore::General, Some(w), _) => {
                dot_scores(query.clone(), w.forward(keys.clone())?)
            }
            (LuongScore::Concat, Some(w), Some(v)) => {
                // W_a·[q; k] = W_a[:, :Dq]·q + W_a[:, Dq:]·k, without building [q; k] per pair.
                let wa = w.weight.val();
                let wq = wa.clone().slice([0..dq, 0..dq]);
                let wk = wa.slice([0..dq, dq..dq + dk]);
                let q_part = query.clone().matmul(wq.transpose()).unsqueeze_dim::<3>(1);
                let k_part = keys.clone().matmul(wk.transpose().unsqueeze_dim::<3>(0));
                v.forward((q_part + k_part).tanh())?.squeeze_dim::<2>(2)
            }
            _ => unreachable!("init creates the parameters each score function needs"),
        };
        let weights = masked_softmax(scores, key_padding_mask, 1);
        let context = weights
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(keys)
            .squeeze_dim::<2>(1);
        let output = self
            .output_proj
            .forward(Tensor::cat(vec![context.clone(), query], 1))?
            .tanh();
        Ok(LuongOutput {
            output,
            context,
            weights,
        })
    }
}

/// q·k_j for each j: `[B, D]`, `[B, L, D]` → `[B, L]`.
fn dot_scores(query: Tensor<2>, keys: Tensor<3>) -> Tensor<2> {
    keys.matmul(query.unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2)
}

impl TorchWeights for LuongAttention {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        let score_proj = match self.score_proj {
            Some(w) => Some(w.load_weights(store, &format!("{prefix}score_proj."))?),
            None => None,
        };
        let v = match self.v {
            Some(v) => Some(v.load_weights(store, &format!("{prefix}v."))?),
            None => None,
        };
        Ok(Self {
            score_proj,
            v,
            output_proj: self
                .output_proj
                .load_weights(store, &format!("{prefix}output_proj."))?,
            ..self
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        if let Some(w) = &self.score_proj {
            w.save_weights(store, &format!("{prefix}score_proj."));
        }
        if let Some(v) = &self.v {
            v.save_weights(store, &format!("{prefix}v."));
        }
        self.output_proj
            .save_weights(store, &format!("{prefix}output_proj."));
    }
}
