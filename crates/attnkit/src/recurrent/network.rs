//! Stacked, optionally bidirectional recurrent networks over batch-first sequences.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::scan_operation::{RecurrentScanSpec, recurrent_scan};
use super::{gru, lstm, rnn};
use crate::error::{AttnError, Result, check_shape, check_size};
use crate::layers::linear::torch_linear;
use crate::store::{TensorStore, TorchWeights, load_param};

/// Which recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecurrentKind {
    /// Elman RNN with tanh (`nn.RNN`).
    Rnn,
    /// Long short-term memory (`nn.LSTM`).
    Lstm,
    /// Gated recurrent unit (`nn.GRU`).
    Gru,
}

impl RecurrentKind {
    /// Gate blocks in the weight matrices: 1, 4 or 3.
    pub fn gates(self) -> usize {
        match self {
            Self::Rnn => 1,
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }
}

/// Configuration of [`Recurrent`].
#[derive(Config, Debug)]
pub struct RecurrentConfig {
    /// The recurrence.
    pub kind: RecurrentKind,
    /// Features per input token.
    pub input_size: usize,
    /// Hidden width H.
    pub hidden_size: usize,
    /// Stacked layers. Default: 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Run a second recurrence from the end of each sequence. Default: false.
    #[config(default = false)]
    pub bidirectional: bool,
}

/// The weights of one layer in one direction (PyTorch: `weight_ih_l{k}` etc.).
#[derive(Module, Debug)]
pub struct DirectionWeights {
    /// `[G·H, input]`.
    pub weight_ih: Param<Tensor<2>>,
    /// `[G·H, H]`.
    pub weight_hh: Param<Tensor<2>>,
    /// `[G·H]`.
    pub bias_ih: Param<Tensor<1>>,
    /// `[G·H]`.
    pub bias_hh: Param<Tensor<1>>,
}

/// A stacked (bi)directional RNN, LSTM or GRU.
#[derive(Module, Debug)]
pub struct Recurrent {
    /// Layer `k`, direction `d` at index `k·dirs + d` (PyTorch's order).
    pub cells: Vec<DirectionWeights>,
    #[module(skip)]
    kind: RecurrentKind,
    hidden_size: usize,
    num_layers: usize,
    bidirectional: bool,
}

/// Output of [`Recurrent::forward`].
#[derive(Debug, Clone)]
pub struct RecurrentOutput {
    /// `[B, L, dirs·H]`: the last layer's hidden state at every position (zeros at
    /// padded positions).
    pub output: Tensor<3>,
    /// `[dirs·layers, B, H]`: the final hidden state of every layer and direction.
    pub h_n: Tensor<3>,
    /// `[dirs·layers, B, H]`: the final cell state (LSTM only).
    pub c_n: Option<Tensor<3>>,
}

impl RecurrentConfig {
    /// Checks the sizes: all at least 1, every weight and the whole stack within the
    /// limit of one tensor (2^31 elements), so a deep stack of small layers is refused
    /// before its loop allocates.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] naming the size that breaks a rule.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return Err(AttnError::Config(format!(
                "input_size, hidden_size and num_layers must be at least 1, got {}, {}, {}",
                self.input_size, self.hidden_size, self.num_layers
            )));
        }
        let (h, g) = (self.hidden_size, self.kind.gates());
        let dirs = if self.bidirectional { 2 } else { 1 };
        let gh = g.saturating_mul(h);
        let input = if self.num_layers > 1 {
            self.input_size.max(h.saturating_mul(dirs))
        } else {
            self.input_size
        };
        check_size(
            &format!(
                "weight_ih [gates·hidden_size, input] with hidden_size = {h}, input = {input}"
            ),
            &[gh, input],
        )?;
        check_size(
            &format!("weight_hh [gates·hidden_size, hidden_size] with hidden_size = {h}"),
            &[gh, h],
        )?;
        // The widest cell: both weights and both biases.
        let cell = gh.saturating_mul(input.saturating_add(h).saturating_add(2));
        check_size(
            &format!(
                "the parameters of {} layers [layers·directions, one cell's]",
                self.num_layers
            ),
            &[self.num_layers.saturating_mul(dirs), cell],
        )?;
        Ok(())
    }

    /// Creates the network; weights and biases U(−1/√H, 1/√H) as PyTorch.
    ///
    /// # Errors
    ///
    /// As [`RecurrentConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<Recurrent> {
        self.validate()?;
        let (h, g) = (self.hidden_size, self.kind.gates());
        let bound = 1.0 / (h as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let dirs = if self.bidirectional { 2 } else { 1 };
        let mut cells = Vec::new();
        for layer in 0..self.num_layers {
            let input = if layer == 0 {
                self.input_size
            } else {
                dirs * h
            };
            for _ in 0..dirs {
                cells.push(DirectionWeights {
                    weight_ih: init.init([g * h, input], device),
                    weight_hh: init.init([g * h, h], device),
                    bias_ih: init.init([g * h], device),
                    bias_hh: init.init([g * h], device),
                });
            }
        }
        Ok(Recurrent {
            cells,
            kind: self.kind,
            hidden_size: h,
            num_layers: self.num_layers,
            bidirectional: self.bidirectional,
        })
    }
}

impl Recurrent {
    /// The recurrence.
    pub fn kind(&self) -> RecurrentKind {
        self.kind
    }

    /// Directions, 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Runs the network over batch-first sequences.
    ///
    /// - `x`: `[B, L, input_size]`
    /// - `lengths`: the true length of each sequence (≤ L); positions after it are
    ///   padding: they do not change the state, their outputs are zero, and the reverse
    ///   direction starts at each sequence's last real token. `None`: all have length L.
    /// - returns `output` `[B, L, dirs·H]`, `h_n` (and for LSTM `c_n`) `[dirs·layers, B, H]`
    ///
    /// In f32 each layer runs as one operation with its own backward pass
    /// ([`scan_operation`](super::scan_operation)): every step and both directions in one
    /// call, backpropagation through time by hand. Other float types take
    /// [`forward_composed`](Self::forward_composed); the two agree within f32 rounding.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x` is not `[B, L, input_size]`; [`AttnError::Config`] if
    /// `lengths` does not give one length of at most L per sequence.
    pub fn forward(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Result<RecurrentOutput> {
        let lens = self.check_inputs(&x, lengths)?;
        if x.dims()[0] == 0 {
            return Ok(self.empty_output(&x));
        }
        // No steps (Burn cannot narrow to an empty range), another backend than the CPU
        // one the fused operation is registered for, or a float type it does not
        // compute in: the composed form.
        if !crate::device::uses_cpu_kernels(&x) || x.dims()[1] == 0 {
            return self.composed(x, &lens);
        }
        let [b, l, _] = x.dims();
        let (dirs, h) = (self.directions(), self.hidden_size);
        let spec = RecurrentScanSpec {
            kind: self.kind,
            hidden: h,
            directions: dirs,
            lengths: Arc::from(lens),
        };
        let mut layer_input = x;
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for layer in 0..self.num_layers {
            let cells = &self.cells[layer * dirs..(layer + 1) * dirs];
            let stacked =
                |f: fn(&DirectionWeights) -> Tensor<2>| cells.iter().map(f).collect::<Vec<_>>();
            // Both directions' input projections in one product: [B, L, D·G·H].
            let w_ih = Tensor::cat(stacked(|c| c.weight_ih.val()), 0);
            let b_ih = Tensor::cat(cells.iter().map(|c| c.bias_ih.val()).collect(), 0);
            let x_proj = torch_linear(layer_input, w_ih, Some(b_ih));
            let w_hh = Tensor::stack(stacked(|c| c.weight_hh.val()), 0);
            let b_hh = Tensor::stack(cells.iter().map(|c| c.bias_hh.val()).collect(), 0);
            let out = recurrent_scan(x_proj, w_hh, b_hh, spec.clone());
            let last = |row: usize| {
                out.clone()
                    .narrow(1, l + row, 1)
                    .reshape([b, dirs, h])
                    .swap_dims(0, 1)
            };
            h_n.push(last(0));
            if self.kind == RecurrentKind::Lstm {
                c_n.push(last(1));
            }
            layer_input = out.narrow(1, 0, l);
        }
        Ok(RecurrentOutput {
            output: layer_input,
            h_n: Tensor::cat(h_n, 0),
            c_n: (!c_n.is_empty()).then(|| Tensor::cat(c_n, 0)),
        })
    }

    /// [`forward`](Self::forward) composed from Burn's tensor operations, one step at a
    /// time (autodiff records every operation of every step). The reference the fused
    /// operation is tested against, and the form for float types other than f32.
    ///
    /// Inputs, outputs and errors as [`forward`](Self::forward).
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward).
    pub fn forward_composed(
        &self,
        x: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<RecurrentOutput> {
        let lens = self.check_inputs(&x, lengths)?;
        if x.dims()[0] == 0 {
            return Ok(self.empty_output(&x));
        }
        self.composed(x, &lens)
    }

    /// The shape of `x` and the lengths checked; every sequence's length.
    fn check_inputs(&self, x: &Tensor<3>, lengths: Option<&[usize]>) -> Result<Vec<usize>> {
        let [b, l, _] = x.dims();
        let input = self.cells[0].weight_ih.val().dims()[1];
        check_shape(
            "x",
            &x.dims(),
            &[None, None, Some(input)],
            &["B", "L", "input_size"],
        )?;
        match lengths {
            Some(lens) => {
                if lens.len() != b || lens.iter().any(|&n| n > l) {
                    return Err(AttnError::Config(format!(
                        "lengths: expected {b} lengths of at most L = {l}, got {lens:?}"
                    )));
                }
                Ok(lens.to_vec())
            }
            None => Ok(vec![l; b]),
        }
    }

    /// No sequences: nothing to run (and Burn's broadcasting treats an empty batch as
    /// one of size 1).
    fn empty_output(&self, x: &Tensor<3>) -> RecurrentOutput {
        let l = x.dims()[1];
        let device = x.device();
        let (dirs, h) = (self.directions(), self.hidden_size);
        let n = dirs * self.num_layers;
        RecurrentOutput {
            output: Tensor::zeros([0, l, dirs * h], &device),
            h_n: Tensor::zeros([n, 0, h], &device),
            c_n: (self.kind == RecurrentKind::Lstm).then(|| Tensor::zeros([n, 0, h], &device)),
        }
    }

    fn composed(&self, x: Tensor<3>, lens: &[usize]) -> Result<RecurrentOutput> {
        let [b, l, _] = x.dims();
        let device = x.device();
        let valid: Vec<f32> = (0..b)
            .flat_map(|i| (0..l).map(move |t| if t < lens[i] { 1.0 } else { 0.0 }))
            .collect();
        let dirs = self.directions();
        // [B, L, 1]: 1 for real tokens, 0 for padding.
        let valid = Tensor::<3>::from_data(TensorData::new(valid, [b, l, 1]), &device);
        let mut layer_input = x;
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for layer in 0..self.num_layers {
            let mut outs = Vec::with_capacity(dirs);
            for dir in 0..dirs {
                let w = &self.cells[layer * dirs + dir];
                let (out, h, c) = self.direction(w, layer_input.clone(), &valid, dir == 1)?;
                outs.push(out);
                h_n.push(h.unsqueeze_dim::<3>(0));
                if let Some(c) = c {
                    c_n.push(c.unsqueeze_dim::<3>(0));
                }
            }
            layer_input = Tensor::cat(outs, 2);
        }
        Ok(RecurrentOutput {
            output: layer_input,
            h_n: Tensor::cat(h_n, 0),
            c_n: (!c_n.is_empty()).then(|| Tensor::cat(c_n, 0)),
        })
    }

    /// One layer, one direction: outputs `[B, L, H]`, final h and c `[B, H]`.
    fn direction(
        &self,
        w: &DirectionWeights,
        x: Tensor<3>,
        valid: &Tensor<3>,
        reverse: bool,
    ) -> Result<(Tensor<3>, Tensor<2>, Option<Tensor<2>>)> {
        let [b, l, _] = x.dims();
        let hsz = self.hidden_size;
        let device = x.device();
        // As rows of one matrix: Burn's batched matmul broadcasts an empty batch (B = 0)
        // against the weight's batch of 1 and reads out of bounds.
        let x_proj = torch_linear(x, w.weight_ih.val(), Some(w.bias_ih.val()));
        let (w_hh, b_hh) = (w.weight_hh.val(), w.bias_hh.val());
        let mut h = Tensor::<2>::zeros([b, hsz], &device);
        let mut c = Tensor::<2>::zeros([b, hsz], &device);
        let mut outs: Vec<Option<Tensor<2>>> = vec![None; l];
        let order: Vec<usize> = if reverse {
            (0..l).rev().collect()
        } else {
            (0..l).collect()
        };
        for t in order {
            let xt = x_proj.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
            let m = valid.clone().narrow(1, t, 1).squeeze_dim::<2>(1); // [B, 1]
            let hp = torch_linear(h.clone(), w_hh.clone(), Some(b_hh.clone()));
            let (h_new, c_new) = match self.kind {
                RecurrentKind::Rnn => (rnn::step(xt, hp), None),
                RecurrentKind::Gru => (gru::step(xt, hp, h.clone()), None),
                RecurrentKind::Lstm => {
                    let (h2, c2) = lstm::step(xt, hp, c.clone());
                    (h2, Some(c2))
                }
            };
            // Padding keeps the state and outputs zero.
            h = h.clone() + (h_new - h) * m.clone();
            if let Some(c_new) = c_new {
                c = c.clone() + (c_new - c) * m.clone();
            }
            outs[t] = Some(h.clone() * m);
        }
        let outs: Vec<Tensor<3>> = outs
            .into_iter()
            .map(|o| o.map(|o| o.unsqueeze_dim::<3>(1)))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let out = if outs.is_empty() {
            Tensor::zeros([b, 0, hsz], &device)
        } else {
            Tensor::cat(outs, 1)
        };
        let c = (self.kind == RecurrentKind::Lstm).then_some(c);
        Ok((out, h, c))
    }
}

impl TorchWeights for Recurrent {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        let dirs = self.directions();
        let mut cells = Vec::with_capacity(self.cells.len());
        for (i, w) in self.cells.into_iter().enumerate() {
            let suffix = format!(
                "_l{}{}",
                i / dirs,
                if i % dirs == 1 { "_reverse" } else { "" }
            );
            cells.push(DirectionWeights {
                weight_ih: load_param(w.weight_ih, store, &format!("{prefix}weight_ih{suffix}"))?,
                weight_hh: load_param(w.weight_hh, store, &format!("{prefix}weight_hh{suffix}"))?,
                bias_ih: load_param(w.bias_ih, store, &format!("{prefix}bias_ih{suffix}"))?,
                bias_hh: load_param(w.bias_hh, store, &format!("{prefix}bias_hh{suffix}"))?,
            });
        }
        Ok(Self { cells, ..self })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        let dirs = self.directions();
        for (i, w) in self.cells.iter().enumerate() {
            let suffix = format!(
                "_l{}{}",
                i / dirs,
                if i % dirs == 1 { "_reverse" } else { "" }
            );
            store.insert_tensor(format!("{prefix}weight_ih{suffix}"), w.weight_ih.val());
            store.insert_tensor(format!("{prefix}weight_hh{suffix}"), w.weight_hh.val());
            store.insert_tensor(format!("{prefix}bias_ih{suffix}"), w.bias_ih.val());
            store.insert_tensor(format!("{prefix}bias_hh{suffix}"), w.bias_hh.val());
        }
    }
}
