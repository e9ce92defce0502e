//! The many-to-many Aaren layer: the cell's outputs for every position, heads
//! concatenated, then an output projection. A drop-in replacement for causal
//! self-attention whose memory at inference does not grow with the sequence.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::cell::{AarenCell, AarenCellConfig};
use super::state::AarenState;
use crate::attention::combine_heads;
use crate::error::{AttnError, Result};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::store::{TensorStore, TorchWeights};

/// How [`Aaren::forward`] computes the prefix outputs. All give the same numbers up to
/// rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AarenMode {
    /// Token by token through the recurrent cell: L sequential steps.
    Iterative,
    /// The parallel prefix scan (Hillis–Steele): ⌈log₂ L⌉ whole-sequence steps, each a
    /// handful of tensor operations that autodiff records — O(L log L) time and memory
    /// in training. The reference the fused form is tested against.
    Parallel,
    /// The default. Projections as matrix products (the query folded into the key
    /// projection), then one sequential pass per sequence over the projection's own
    /// layout, sequences spread over threads; in training the pass is one backend
    /// operation whose backward is a reverse scan, O(L·d) per head
    /// ([`scan_operation`](super::scan_operation)). The fastest form on a CPU, for
    /// inference and training.
    #[default]
    Fused,
}

impl std::str::FromStr for AarenMode {
    type Err = AttnError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "iterative" => Ok(Self::Iterative),
            "parallel" => Ok(Self::Parallel),
            "fused" => Ok(Self::Fused),
            other => Err(AttnError::Config(format!(
                "mode must be `iterative`, `parallel` or `fused`, got `{other}`"
            ))),
        }
    }
}

/// Configuration of [`Aaren`].
#[derive(Config, Debug)]
pub struct AarenConfig {
    /// Embedding width E.
    pub embed_dim: usize,
    /// Heads H; must divide E.
    pub num_heads: usize,
    /// How the prefix outputs are computed. Default: fused.
    #[config(default = "AarenMode::Fused")]
    pub mode: AarenMode,
    /// A learned forgetting rate per head (beyond the paper; see
    /// [`AarenCellConfig::forgetting`]). Default: false.
    #[config(default = false)]
    pub forgetting: bool,
}

/// The Aaren layer. Parameters: `query` `[E]`, `in_proj_weight` `[3E, E]`,
/// `in_proj_bias` `[3E]`, `out_proj.weight` `[E, E]`, `out_proj.bias` `[E]`.
#[derive(Module, Debug)]
pub struct Aaren {
    /// Query, key and value projections and the learned query.
    pub cell: AarenCell,
    /// The output projection.
    pub out_proj: TorchLinear,
    #[module(skip)]
    mode: AarenMode,
}

impl AarenConfig {
    /// Creates the layer on `device` (output projection initialised as `nn.Linear`).
    ///
    /// # Errors
    ///
    /// As [`AarenCellConfig::init`](super::AarenCellConfig::init): heads that do not divide
    /// E, or weights over 2^31 elements.
    pub fn init(&self, device: &Device) -> Result<Aaren> {
        let cell = AarenCellConfig::new(self.embed_dim, self.num_heads)
            .with_forgetting(self.forgetting)
            .init(device)?;
        Ok(Aaren {
            cell,
            out_proj: TorchLinearConfig::new(self.embed_dim, self.embed_dim).init(device),
            mode: self.mode,
        })
    }
}

impl Aaren {
    /// The mode `forward` uses.
    pub fn mode(&self) -> AarenMode {
        self.mode
    }

    /// The same layer computing in `mode`.
    pub fn with_mode(mut self, mode: AarenMode) -> Self {
        self.mode = mode;
        self
    }

    /// Embedding width E.
    pub fn embed_dim(&self) -> usize {
        self.cell.embed_dim()
    }

    /// Heads H.
    pub fn num_heads(&self) -> usize {
        self.cell.num_heads()
    }

    /// Output at every position: softmax attention of the learned query over the
    /// unmasked positions up to it, heads concatenated, projected.
    ///
    /// - `x`: `[B, L, E]`
    /// - `mask`: `[B, L]`, `true` = padding; a position with no unmasked token up to it
    ///   gives `out_proj(0)` = the output bias
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<2, Bool>>) -> Result<Tensor<3>> {
        Ok(self.forward_from(x, mask, None)?.0)
    }

    /// [`forward`](Self::forward) continuing from `state` (a previous chunk's), returning
    /// the state after the last position as well.
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`; `state`: `[B, H, d]`-sized or `None`
    /// - returns: `[B, L, E]` and the state
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x`, `mask` or `state` does not match the others or the
    /// layer.
    pub fn forward_from(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<3>, AarenState)> {
        let (heads, state) = match self.mode {
            AarenMode::Iterative => self.cell.forward_iterative(x, mask, state)?,
            AarenMode::Parallel => self.cell.forward_parallel(x, mask, state)?,
            AarenMode::Fused => self.cell.forward_fused(x, mask, state)?,
        };
        Ok((self.out_proj.forward(combine_heads(heads))?, state))
    }

    /// A stream over `batch` sequences that takes tokens in chunks of any length and
    /// keeps only the fixed-size state between them.
    pub fn stream(&self, batch: usize) -> AarenLayerStream<'_> {
        AarenLayerStream {
            layer: self,
            state: self.cell.empty_state(batch),
            tokens: 0,
        }
    }
}

/// Chunked streaming through an [`Aaren`] layer (see [`Aaren::stream`]).
///
/// Feeding a sequence in chunks gives the outputs of one full-sequence call (up to the
/// rounding of a different summation order); the memory held between chunks is the
/// state, B·H·(d + 2) numbers, however many tokens have passed.
#[derive(Debug)]
pub struct AarenLayerStream<'l> {
    layer: &'l Aaren,
    state: AarenState,
    tokens: usize,
}

impl AarenLayerStream<'_> {
    /// Feeds a chunk.
    ///
    /// - `x`: `[B, Lc, E]`; `mask`: `[B, Lc]`, `true` = padding
    /// - returns: the layer's outputs for these positions, `[B, Lc, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if the chunk or its mask does not match the stream's batch and
    /// the layer's width.
    pub fn push(&mut self, x: Tensor<3>, mask: Option<&Tensor<2, Bool>>) -> Result<Tensor<3>> {
        let lc = x.dims()[1];
        let state = self.state.clone();
        let (out, state) = self.layer.forward_from(x, mask, Some(state))?;
        // Streams run at inference: drop the graph so memory stays flat under autodiff too.
        self.state = state.detach();
        self.tokens += lc;
        Ok(out)
    }

    /// The state carried between chunks.
    pub fn state(&self) -> &AarenState {
        &self.state
    }

    /// Tokens fed so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

impl TorchWeights for Aaren {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            cell: self.cell.load_weights(store, prefix)?,
            out_proj: self
                .out_proj
                .load_weights(store, &format!("{prefix}out_proj."))?,
            mode: self.mode,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.cell.save_weights(store, prefix);
        self.out_proj
            .save_weights(store, &format!("{prefix}out_proj."));
    }
}
