//! The Aaren cell: softmax attention of one learned query over a growing sequence,
//! as a recurrence (the paper's Fig. 2), as a closed form, and as a parallel scan.
//!
//! The query q = W_q·query + b_q does not depend on the input, which is what makes
//! attention a recurrence: each token only adds a key k_t = W_k·x_t + b_k and a value
//! v_t = W_v·x_t + b_v, and per head h the score s_th = q_h·k_th/√d. The state after t
//! tokens is [`AarenState`], of fixed size, and o_t = softmax over s_1..s_t applied to
//! v_1..v_t — the output at position t of causal attention with the query q.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

use super::scan::{ScanElements, inclusive_scan, last_output};
use super::state::AarenState;
use crate::attention::split_heads;
use crate::error::{AttnError, Result, check_shape, check_size};
use crate::layers::linear::torch_linear;
use crate::store::{TensorStore, TorchWeights, load_param};

/// Tokens per chunk of a forgetting cell's fused inference (see
/// [`AarenCell::forward_fused`]).
const DECAY_CHUNK: usize = 1024;

/// Configuration of [`AarenCell`].
#[derive(Config, Debug)]
pub struct AarenCellConfig {
    /// Embedding width E of the tokens.
    pub embed_dim: usize,
    /// Number of heads H; must divide E.
    pub num_heads: usize,
    /// A learned forgetting rate per head (beyond the paper): token i's score at step t
    /// is s_i − λ_h·(t − i), so old tokens fade with a time constant of 1/λ_h tokens
    /// while the state keeps its fixed size. Default: false (the paper's Aaren, which
    /// weighs every past token by its score alone).
    #[config(default = false)]
    pub forgetting: bool,
}

/// The initial forgetting rates: time constants of 50, 200, 800, 3200, … tokens, head
/// by head (a geometric spread, as multi-scale retention uses), so that some heads
/// follow the recent past and others average over a long one.
fn initial_log_decay(heads: usize) -> Vec<f32> {
    (0..heads)
        .map(|h| -(50.0f64 * 4f64.powi(h as i32)).ln() as f32)
        .collect()
}

/// The Aaren cell. Parameters (PyTorch-style names): `query` `[E]`, `in_proj_weight`
/// `[3E, E]` (W_q, W_k, W_v stacked by rows), `in_proj_bias` `[3E]`.
///
/// With forgetting, also `log_decay` `[H]`: λ_h = exp(log_decay_h).
///
/// Initialisation: `query` ~ N(0, 1), `in_proj_weight` Xavier-uniform (as
/// `nn.MultiheadAttention`), `in_proj_bias` zeros, `log_decay` −ln(50·4^h).
#[derive(Module, Debug)]
pub struct AarenCell {
    /// The learned, input-independent query, `[E]`.
    pub query: Param<Tensor<1>>,
    /// `[3E, E]`.
    pub in_proj_weight: Param<Tensor<2>>,
    /// `[3E]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// Log forgetting rates `[H]`, if the cell forgets.
    pub log_decay: Option<Param<Tensor<1>>>,
    embed_dim: usize,
    num_heads: usize,
}

impl AarenCellConfig {
    /// Checks that H ≥ 1 divides E ≥ 1 and that `in_proj_weight` `[3E, E]` fits the
    /// limit of one tensor (2^31 elements).
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] naming the value that breaks a rule.
    pub fn validate(&self) -> Result<()> {
        if self.embed_dim == 0 || self.num_heads == 0 || self.embed_dim % self.num_heads != 0 {
            return Err(AttnError::Config(format!(
                "num_heads must be at least 1 and divide embed_dim: embed_dim = {}, num_heads = {}",
                self.embed_dim, self.num_heads
            )));
        }
        let e = self.embed_dim;
        check_size(
            &format!("in_proj_weight [3·embed_dim, embed_dim] with embed_dim = {e}"),
            &[e.saturating_mul(3), e],
        )?;
        Ok(())
    }

    /// Creates the cell on `device`.
    ///
    /// # Errors
    ///
    /// As [`AarenCellConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<AarenCell> {
        self.validate()?;
        let e = self.embed_dim;
        Ok(AarenCell {
            query: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([e], device),
            in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [3 * e, e],
                Some(e),
                Some(3 * e),
                device,
            ),
            in_proj_bias: Initializer::Zeros.init([3 * e], device),
            log_decay: self.forgetting.then(|| {
                Param::from_tensor(Tensor::from_data(
                    TensorData::new(initial_log_decay(self.num_heads), [self.num_heads]),
                    device,
                ))
            }),
            embed_dim: e,
            num_heads: self.num_heads,
        })
    }
}

impl AarenCell {
    /// Embedding width E.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// Heads H.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Width of a head, E / H.
    pub fn d_head(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    /// The state before any token, for `batch` sequences.
    pub fn empty_state(&self, batch: usize) -> AarenState {
        let device = self.query.val().device();
        AarenState::empty(batch, self.num_heads, self.d_head(), &device)
    }

    /// The forgetting rates λ_h `[H]`, if the cell forgets.
    pub fn decay_rates(&self) -> Option<Tensor<1>> {
        self.log_decay.as_ref().map(|p| p.val().exp())
    }

    /// Scores of a chunk of L tokens with the forgetting applied: s_th + λ_h·t. Token
    /// i's decayed score at step t, s_ih − λ_h(t − i), differs from this by −λ_h·t, the
    /// same for every i ≤ t, which the softmax at step t ignores; so the plain
    /// recurrence (or scan) over these scores gives the decayed outputs. Position 0 is
    /// the chunk's first token, which keeps the added term below λ_h·L.
    fn decayed_scores(&self, s: Tensor<3>) -> Tensor<3> {
        match self.decay_rates() {
            None => s,
            Some(rates) => {
                let [_, h, l] = s.dims();
                let positions = Tensor::<1, Int>::arange(0..l as i64, &s.device())
                    .float()
                    .reshape([1, 1, l]);
                s + rates.reshape([1, h, 1]) * positions
            }
        }
    }

    /// A state carried into a chunk, moved to the chunk's frame of reference: its
    /// tokens are one step older than the chunk's first (m − λ).
    fn age_into_chunk(&self, state: AarenState) -> AarenState {
        self.shift_state(state, 1.0)
    }

    /// The state after a chunk of `len` tokens, moved from the chunk's frame of
    /// reference (position 0) to its last token's (m − λ·(len − 1)).
    fn age_out_of_chunk(&self, state: AarenState, len: usize) -> AarenState {
        self.shift_state(state, len as f64 - 1.0)
    }

    fn shift_state(&self, state: AarenState, steps: f64) -> AarenState {
        match self.decay_rates() {
            None => state,
            Some(rates) => {
                let h = self.num_heads;
                AarenState {
                    m: state.m - rates.reshape([1, h]) * steps,
                    ..state
                }
            }
        }
    }

    fn block(&self, i: usize) -> (Tensor<2>, Tensor<1>) {
        let e = self.embed_dim;
        let w = self.in_proj_weight.val().slice([i * e..(i + 1) * e, 0..e]);
        let b = self.in_proj_bias.val().narrow(0, i * e, e);
        (w, b)
    }

    /// The projected query per head, `[H, d]`.
    pub fn query_heads(&self) -> Tensor<2> {
        let (w, b) = self.block(0);
        let q = burn::tensor::module::linear(
            self.query.val().unsqueeze_dim::<2>(0),
            w.transpose(),
            Some(b),
        );
        q.reshape([self.num_heads, self.d_head()])
    }

    /// Scores and values of every token.
    ///
    /// - `x`: `[B, L, E]`
    /// - returns scores `[B, H, L]` (s_th = q_h·k_th/√d) and values `[B, H, L, d]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn scores_values(&self, x: Tensor<3>) -> Result<(Tensor<3>, Tensor<4>)> {
        let (s, v) = self.scores_values_token_major(x)?;
        Ok((s, v.swap_dims(1, 2)))
    }

    /// [`scores_values`](Self::scores_values) with the values as the projection writes
    /// them, `[B, L, H, d]` (no transpose).
    fn scores_values_token_major(&self, x: Tensor<3>) -> Result<(Tensor<3>, Tensor<4>)> {
        let e = self.embed_dim;
        check_shape("x", &x.dims(), &[None, None, Some(e)], &["B", "L", "E"])?;
        let [b, l, _] = x.dims();
        let (wk, bk) = self.block(1);
        let (wv, bv) = self.block(2);
        // As rows of one matrix: Burn's batched matmul broadcasts an empty batch (B = 0)
        // against the weight's batch of 1 and reads out of bounds.
        let k = split_heads(torch_linear(x.clone(), wk, Some(bk)), self.num_heads)?;
        let v = torch_linear(x, wv, Some(bv)).reshape([b, l, self.num_heads, self.d_head()]);
        let scale = 1.0 / (self.d_head() as f64).sqrt();
        let q = self
            .query_heads()
            .unsqueeze_dim::<3>(1)
            .unsqueeze_dim::<4>(0);
        let s = (k * q).sum_dim(3).squeeze_dim::<3>(3) * scale;
        Ok((s, v))
    }

    /// One recurrent step: a token in, the new state and its output out.
    ///
    /// - `state`: from [`empty_state`](Self::empty_state) or a previous step
    /// - `x`: `[B, E]`, the token
    /// - `mask`: `[B]`, `true` = padding (the state is kept)
    /// - returns the state and o_t `[B, H, d]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x` or `mask` does not match the state's batch and the
    /// cell's width.
    pub fn step(
        &self,
        state: AarenState,
        x: Tensor<2>,
        mask: Option<&Tensor<1, Bool>>,
    ) -> Result<(AarenState, Tensor<3>)> {
        let (s, v) = self.scores_values(x.unsqueeze_dim(1))?;
        let state = self
            .age_into_chunk(state)
            .step(s.squeeze_dim(2), v.squeeze_dim(2), mask)?;
        let out = state.output();
        Ok((state, out))
    }

    /// Every prefix output by stepping through the tokens one at a time.
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`, `true` = padding
    /// - `state`: where to start (the empty prefix if `None`)
    /// - returns o `[B, H, L, d]` and the state after the last token
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x`, `mask` or `state` does not match the others or the
    /// cell.
    pub fn forward_iterative(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<4>, AarenState)> {
        let [b, l, _] = x.dims();
        let (s, v, mut state) = self.start(x, mask, state)?;
        let mut outputs = Vec::with_capacity(l);
        for t in 0..l {
            let mask_t = mask.map(|m| m.clone().narrow(1, t, 1).reshape([b]));
            state = state.step(
                s.clone().narrow(2, t, 1).squeeze_dim(2),
                v.clone().narrow(2, t, 1).squeeze_dim(2),
                mask_t.as_ref(),
            )?;
            outputs.push(state.output().unsqueeze_dim::<4>(2));
        }
        let out = if outputs.is_empty() {
            let [_, h, d] = state.dims();
            Tensor::zeros([b, h, 0, d], &s.device())
        } else {
            Tensor::cat(outputs, 2)
        };
        Ok((out, self.age_out_of_chunk(state, l)))
    }

    /// Every prefix output by the parallel prefix scan (⌈log₂ L⌉ steps).
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`, `true` = padding
    /// - `state`: where to start (the empty prefix if `None`)
    /// - returns o `[B, H, L, d]` and the state after the last token
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x`, `mask` or `state` does not match the others or the
    /// cell.
    pub fn forward_parallel(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<4>, AarenState)> {
        let [b, l, _] = x.dims();
        let (s, v, state) = self.start(x, mask, state)?;
        if l == 0 || b == 0 {
            // Nothing to scan (and Burn cannot expand a state to an empty batch).
            let [_, h, d] = state.dims();
            let state = self.age_out_of_chunk(state, l);
            return Ok((Tensor::zeros([b, h, l, d], &s.device()), state));
        }
        let mut prefixes = inclusive_scan(ScanElements::leaves(s, v, mask)?);
        prefixes = state.broadcast(l).combine(prefixes);
        let out = prefixes.outputs();
        Ok((
            out,
            self.age_out_of_chunk(AarenState::from_elements(prefixes), l),
        ))
    }

    /// Every prefix output by the fused CPU kernels (see
    /// [`AarenMode::Fused`](super::AarenMode::Fused)): scores from the query folded into
    /// the key projection (`x · (W_kᵀ q_h) / √d`, one column per head instead of a full
    /// key projection), values in the projection's token-major layout, then one pass per
    /// sequence. With gradients (an autodiff device) the pass is the operation of
    /// [`scan_operation`](super::scan_operation), whose backward is a reverse scan; a
    /// starting state that itself carries gradients, or a float type other than f32,
    /// takes [`forward_parallel`](Self::forward_parallel) instead, and so does every
    /// backend but the CPU one (the kernels are registered for it only). The returned state
    /// carries no gradient.
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`, `true` = padding
    /// - `state`: where to start (the empty prefix if `None`)
    /// - returns o `[B, H, L, d]` and the state after the last token
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x`, `mask` or `state` does not match the others or the
    /// cell.
    pub fn forward_fused(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<4>, AarenState)> {
        if !crate::device::is_cpu_backend(&x.device()) {
            return self.forward_parallel(x, mask, state);
        }
        let training = x.is_tracked()
            || self.query.val().is_tracked()
            || self.in_proj_weight.val().is_tracked();
        if training {
            // A given state moved by a tracked forgetting rate carries gradients too.
            let state_tracked = state.as_ref().is_some_and(|s| {
                s.m.is_tracked() || s.c.is_tracked() || s.a.is_tracked() || self.log_decay.is_some()
            });
            if state_tracked || x.dtype() != burn::tensor::DType::F32 {
                return self.forward_parallel(x, mask, state);
            }
        }
        let [b, l, _] = x.dims();
        if !training && self.log_decay.is_some() && l > DECAY_CHUNK {
            // The added λ·t grows with t: chunks keep it small next to the scores.
            return self.forward_fused_chunked(x, mask, state);
        }
        let (s, v, state) = self.start_folded(x, mask, state)?;
        if !training {
            // The values stay in the projection's layout: no transpose copy first.
            let (out, state) = super::fused::scan_fused_token_major(s, v, mask, state)?;
            return Ok((out, self.age_out_of_chunk(state, l)));
        }
        let h = self.num_heads;
        let s = match mask {
            Some(mask) => {
                let m = mask.clone().unsqueeze_dim::<3>(1).expand([b, h, l]);
                s.mask_fill(m, f32::NEG_INFINITY)
            }
            None => s,
        };
        let (out, state) = super::scan_operation::aaren_scan(s, v, state);
        Ok((out.swap_dims(1, 2), self.age_out_of_chunk(state, l)))
    }

    /// [`forward_fused`](Self::forward_fused) at inference over chunks of
    /// [`DECAY_CHUNK`] tokens, the state carried from one to the next.
    fn forward_fused_chunked(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        mut state: Option<AarenState>,
    ) -> Result<(Tensor<4>, AarenState)> {
        let [b, l, _] = x.dims();
        let mut outputs = Vec::with_capacity(l.div_ceil(DECAY_CHUNK));
        for start in (0..l).step_by(DECAY_CHUNK) {
            let len = DECAY_CHUNK.min(l - start);
            let chunk_mask = mask.map(|m| m.clone().narrow(1, start, len));
            let (out, next) =
                self.forward_fused(x.clone().narrow(1, start, len), chunk_mask.as_ref(), state)?;
            outputs.push(out);
            state = Some(next);
        }
        let state = state.unwrap_or_else(|| self.empty_state(b));
        Ok((Tensor::cat(outputs, 2), state))
    }

    /// Scores by the folded query `[B, H, L]`, values `[B, L, H, d]` and the checked
    /// starting state.
    fn start_folded(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<3>, Tensor<4>, AarenState)> {
        let e = self.embed_dim;
        check_shape("x", &x.dims(), &[None, None, Some(e)], &["B", "L", "E"])?;
        let [b, l, _] = x.dims();
        let (h, d) = (self.num_heads, self.d_head());
        let (wk, bk) = self.block(1);
        let (wv, bv) = self.block(2);
        let q = self.query_heads();
        // u_h = W_k,hᵀ q_h and c_h = b_k,h · q_h: s_th = (x_t · u_h + c_h) / √d.
        let u = q
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(wk.reshape([h, d, e]))
            .reshape([h, e]);
        let c = (q * bk.reshape([h, d])).sum_dim(1).reshape([h]);
        let scale = 1.0 / (d as f64).sqrt();
        let s = (torch_linear(x.clone(), u, Some(c)) * scale).swap_dims(1, 2);
        let v = torch_linear(x, wv, Some(bv)).reshape([b, l, h, d]);
        let state = self.start_state(b, l, mask, state)?;
        Ok((self.decayed_scores(s), v, state))
    }

    /// The many-to-one output o_N in one shot (no recurrence, no scan):
    /// o_N = Σ e^(s_i − M) v_i / Σ e^(s_i − M), M = max s_i.
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`, `true` = padding
    /// - returns `[B, H, d]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    /// [`AttnError::Config`] if the sequence is empty (L = 0).
    pub fn forward_last(&self, x: Tensor<3>, mask: Option<&Tensor<2, Bool>>) -> Result<Tensor<3>> {
        let (s, v) = self.scores_values(x)?;
        last_output(self.decayed_scores(s), v, mask)
    }

    /// Scores, values `[B, H, L, d]` and the starting state of a sequence, every shape
    /// checked.
    fn start(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<3>, Tensor<4>, AarenState)> {
        let (s, v, state) = self.start_token_major(x, mask, state)?;
        Ok((s, v.swap_dims(1, 2), state))
    }

    /// [`start`](Self::start) with the values `[B, L, H, d]`.
    fn start_token_major(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<(Tensor<3>, Tensor<4>, AarenState)> {
        let [b, l, _] = x.dims();
        let (s, v) = self.scores_values_token_major(x)?;
        let state = self.start_state(b, l, mask, state)?;
        Ok((self.decayed_scores(s), v, state))
    }

    /// The checked starting state, moved into the chunk's frame of reference when one
    /// was given (the empty prefix needs no move, and stays free of gradients).
    fn start_state(
        &self,
        b: usize,
        l: usize,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<AarenState> {
        let given = state.is_some();
        let state = self.check_start(b, l, mask, state)?;
        Ok(if given {
            self.age_into_chunk(state)
        } else {
            state
        })
    }

    /// The mask's shape checked against `[B, L]`; the starting state (the empty prefix
    /// if `None`) checked against `[B, H, d]`.
    fn check_start(
        &self,
        b: usize,
        l: usize,
        mask: Option<&Tensor<2, Bool>>,
        state: Option<AarenState>,
    ) -> Result<AarenState> {
        if let Some(mask) = mask {
            check_shape(
                "key_padding_mask",
                &mask.dims(),
                &[Some(b), Some(l)],
                &["B", "L"],
            )?;
        }
        let state = state.unwrap_or_else(|| self.empty_state(b));
        check_shape(
            "state",
            &state.dims(),
            &[Some(b), Some(self.num_heads), Some(self.d_head())],
            &["B", "H", "d"],
        )?;
        Ok(state)
    }
}

impl TorchWeights for AarenCell {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            query: load_param(self.query, store, &format!("{prefix}query"))?,
            in_proj_weight: load_param(
                self.in_proj_weight,
                store,
                &format!("{prefix}in_proj_weight"),
            )?,
            in_proj_bias: load_param(self.in_proj_bias, store, &format!("{prefix}in_proj_bias"))?,
            log_decay: match self.log_decay {
                Some(p) => Some(load_param(p, store, &format!("{prefix}log_decay"))?),
                None => {
                    let name = format!("{prefix}log_decay");
                    if store.get(&name).is_some() {
                        return Err(AttnError::Value {
                            what: format!("{}: weight `{name}`", store.source()),
                            why: "forgetting rates, but the cell was configured without forgetting"
                                .into(),
                        });
                    }
                    None
                }
            },
            ..self
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        store.insert_tensor(format!("{prefix}query"), self.query.val());
        store.insert_tensor(format!("{prefix}in_proj_weight"), self.in_proj_weight.val());
        store.insert_tensor(format!("{prefix}in_proj_bias"), self.in_proj_bias.val());
        if let Some(p) = &self.log_decay {
            store.insert_tensor(format!("{prefix}log_decay"), p.val());
        }
    }
}
