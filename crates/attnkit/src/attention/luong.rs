//! Luong (multiplicative) attention (Luong et al. 2015, arXiv 1508.04025, §3.1).
//!
//! Scores of the decoder state h_t against each encoder state h̄_s:
//! - dot: h_tᵀ·h̄_s
//! - general: h_tᵀ·W_a·h̄_s
//! - concat: v_aᵀ·tanh(W_a·[h_t; h̄_s])
//!
//! a_t = softmax(scores), context c_t = Σ_s a_ts·h̄_s, and the attentional hidden state
//! h̃_t = tanh(W_c·[c_t; h_t]) (eq. 5) is the output.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::prelude::*;

use super::softmax::masked_softmax;
use crate::error::{AttnError, Result, check_shape, check_size};
use crate::layers::linear::torch_linear;
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::store::{TensorStore, TorchWeights};

/// Which of Luong's score functions a [`LuongAttentionConfig`] asks for.
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

/// A score function with its parameters: each variant holds exactly what its formula
/// uses, so a score without its weights cannot be built.
#[derive(Debug, Clone)]
pub enum LuongScorer {
    /// h_tᵀ·h̄_s; no parameters.
    Dot,
    /// h_tᵀ·W_a·h̄_s.
    General {
        /// W_a, `[Dq, Dk]` (PyTorch name `score_proj.weight`; bias-free).
        w: TorchLinear,
    },
    /// v_aᵀ·tanh(W_a·[h_t; h̄_s]).
    Concat {
        /// W_a, `[Dq, Dq + Dk]` (`score_proj.weight`; bias-free).
        w: TorchLinear,
        /// v_a, `[1, Dq]` (`v.weight`; bias-free).
        v: TorchLinear,
    },
}

impl LuongScorer {
    /// Which score function this is.
    pub fn kind(&self) -> LuongScore {
        match self {
            Self::Dot => LuongScore::Dot,
            Self::General { .. } => LuongScore::General,
            Self::Concat { .. } => LuongScore::Concat,
        }
    }

    /// The parameters with their names inside this module.
    fn layers(&self) -> Vec<(&'static str, &TorchLinear)> {
        match self {
            Self::Dot => vec![],
            Self::General { w } => vec![("w", w)],
            Self::Concat { w, v } => vec![("w", w), ("v", v)],
        }
    }

    /// This scorer with `f` applied to each parameter layer (by name).
    fn map_layers(self, mut f: impl FnMut(&'static str, TorchLinear) -> TorchLinear) -> Self {
        match self {
            Self::Dot => Self::Dot,
            Self::General { w } => Self::General { w: f("w", w) },
            Self::Concat { w, v } => {
                let w = f("w", w);
                Self::Concat { w, v: f("v", v) }
            }
        }
    }
}

// Burn derives `Module` only for enums whose variants each hold one module; `Dot` holds
// none, so the traversal is written out: it visits the layers the variant has.
const SCORER: &str = "Enum:LuongScorer";

impl Module for LuongScorer {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.layers()
            .into_iter()
            .fold(devices, |d, (_, l)| l.collect_devices(d))
    }

    fn fork(self, device: &Device) -> Self {
        self.map_layers(|_, l| l.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.map_layers(|_, l| l.to_device(device))
    }

    fn train(self) -> Self {
        self.map_layers(|_, l| l.train())
    }

    fn valid(&self) -> Self {
        self.clone().map_layers(|_, l| l.valid())
    }

    fn materialize(self) -> Self {
        self.map_layers(|_, l| l.materialize())
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (name, layer) in self.layers() {
            visitor.enter_module(name, SCORER);
            layer.visit(visitor);
            visitor.exit_module(name, SCORER);
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        self.map_layers(|name, layer| {
            mapper.enter_module(name, SCORER);
            let layer = layer.map(mapper);
            mapper.exit_module(name, SCORER);
            layer
        })
    }
}

impl ModuleDisplayDefault for LuongScorer {
    fn content(&self, content: Content) -> Option<Content> {
        let mut content = content.set_top_level_type(&format!("{:?}", self.kind()));
        for (name, layer) in self.layers() {
            content = content.add(name, layer);
        }
        content.optional()
    }
}

impl ModuleDisplay for LuongScorer {}

/// Luong attention. PyTorch names: `score_proj.weight` (general, concat), `v.weight`
/// (concat), `output_proj.weight` `[Dq, Dk + Dq]` (W_c; all bias-free).
#[derive(Module, Debug)]
pub struct LuongAttention {
    /// The score function and its parameters.
    pub score: LuongScorer,
    /// W_c.
    pub output_proj: TorchLinear,
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
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if a width is 0, the dot score gets `query_dim != key_dim`,
    /// or a weight would have more than 2^31 elements.
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
        // W_c and the concat W_a, [Dq, Dq + Dk], are the largest weights.
        check_size(
            &format!(
                "Luong W_c [query_dim, query_dim + key_dim] with query_dim = {dq}, key_dim = {dk}"
            ),
            &[dq, dq.saturating_add(dk)],
        )?;
        let bias_free = |i, o| TorchLinearConfig::new(i, o).with_bias(false).init(device);
        let score = match self.score {
            LuongScore::Dot => LuongScorer::Dot,
            LuongScore::General => LuongScorer::General {
                w: bias_free(dk, dq),
            },
            LuongScore::Concat => LuongScorer::Concat {
                w: bias_free(dq + dk, dq),
                v: bias_free(dq, 1),
            },
        };
        Ok(LuongAttention {
            score,
            output_proj: bias_free(dk + dq, dq),
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
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
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
        let device = query.device();
        if b == 0 {
            // Burn broadcasts an empty batch as if it had one element: nothing to compute.
            return Ok(LuongOutput {
                output: Tensor::zeros([0, dq], &device),
                context: Tensor::zeros([0, dk], &device),
                weights: Tensor::zeros([0, l], &device),
            });
        }
        if l == 0 {
            // No encoder states: the context is a weighted sum of nothing.
            let context = Tensor::zeros([b, dk], &device);
            let output = self
                .output_proj
                .forward(Tensor::cat(vec![context.clone(), query], 1))?
                .tanh();
            return Ok(LuongOutput {
                output,
                context,
                weights: Tensor::zeros([b, 0], &device),
            });
        }
        let scores = match &self.score {
            LuongScorer::Dot => dot_scores(query.clone(), keys.clone()),
            LuongScorer::General { w } => dot_scores(query.clone(), w.forward(keys.clone())?),
            LuongScorer::Concat { w, v } => {
                // W_a·[q; k] = W_a[:, :Dq]·q + W_a[:, Dq:]·k, without building [q; k] per pair.
                let wa = w.weight.val();
                let wq = wa.clone().slice([0..dq, 0..dq]);
                let wk = wa.slice([0..dq, dq..dq + dk]);
                let q_part = torch_linear(query.clone(), wq, None).unsqueeze_dim::<3>(1);
                let k_part = torch_linear(keys.clone(), wk, None);
                v.forward((q_part + k_part).tanh())?.squeeze_dim::<2>(2)
            }
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
        let score_proj = format!("{prefix}score_proj.");
        let score = match self.score {
            LuongScorer::Dot => LuongScorer::Dot,
            LuongScorer::General { w } => LuongScorer::General {
                w: w.load_weights(store, &score_proj)?,
            },
            LuongScorer::Concat { w, v } => LuongScorer::Concat {
                w: w.load_weights(store, &score_proj)?,
                v: v.load_weights(store, &format!("{prefix}v."))?,
            },
        };
        Ok(Self {
            score,
            output_proj: self
                .output_proj
                .load_weights(store, &format!("{prefix}output_proj."))?,
            ..self
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        match &self.score {
            LuongScorer::Dot => {}
            LuongScorer::General { w } => w.save_weights(store, &format!("{prefix}score_proj.")),
            LuongScorer::Concat { w, v } => {
                w.save_weights(store, &format!("{prefix}score_proj."));
                v.save_weights(store, &format!("{prefix}v."));
            }
        }
        self.output_proj
            .save_weights(store, &format!("{prefix}output_proj."));
    }
}

#[cfg(test)]
mod tests {
    use burn::store::ModuleRecord;
    use burn::tensor::{Bytes, Distribution};

    use super::*;

    fn luong(score: LuongScore) -> LuongAttention {
        LuongAttentionConfig::new(4, 4)
            .with_score(score)
            .init(&Device::flex())
            .unwrap()
    }

    #[test]
    fn each_score_holds_exactly_its_parameters() {
        // W_c [4, 8] always; general adds W_a [4, 4]; concat W_a [4, 8] and v_a [1, 4].
        for (score, params, names) in [
            (LuongScore::Dot, 32, vec!["output_proj.weight"]),
            (
                LuongScore::General,
                48,
                vec!["output_proj.weight", "score_proj.weight"],
            ),
            (
                LuongScore::Concat,
                68,
                vec!["output_proj.weight", "score_proj.weight", "v.weight"],
            ),
        ] {
            let m = luong(score);
            assert_eq!(m.score.kind(), score);
            assert_eq!(Module::num_params(&m), params, "{score:?}");
            let mut store = TensorStore::new("w");
            m.save_weights(&mut store, "");
            assert_eq!(store.names().collect::<Vec<_>>(), names, "{score:?}");
        }
    }

    #[test]
    fn a_record_carries_the_score_parameters_to_another_module() {
        let device = Device::flex();
        let query = Tensor::<2>::random([2, 4], Distribution::Normal(0.0, 1.0), &device);
        let keys = Tensor::<3>::random([2, 3, 4], Distribution::Normal(0.0, 1.0), &device);
        for score in [LuongScore::General, LuongScore::Concat] {
            let (a, b) = (luong(score), luong(score));
            let bytes = a.clone().into_record().into_bytes().unwrap().to_vec();
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).unwrap();
            let b = b.try_load_record(record).unwrap();
            let out = |m: &LuongAttention| {
                m.forward(query.clone(), keys.clone(), None)
                    .unwrap()
                    .output
                    .try_into_vec_as::<f32>()
                    .unwrap()
            };
            assert_eq!(out(&a), out(&b), "{score:?}");
        }
    }

    #[test]
    fn absurd_widths_are_refused_before_allocating() {
        let err = LuongAttentionConfig::new(1 << 20, 1 << 20)
            .init(&Device::flex())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: Luong W_c [query_dim, query_dim + key_dim] with query_dim = 1048576, \
             key_dim = 1048576: shape [1048576, 2097152]: expected at most 2147483648 (2^31) \
             elements, got 2199023255552"
        );
    }
}
