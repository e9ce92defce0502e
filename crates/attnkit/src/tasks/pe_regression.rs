//! The positional-encoding regression.
//!
//! Model: learnable positional encoding + multi-head self-attention + mean over the
//! sequence + a linear layer to one number; MSE and Adam (lr 1e-4 by default).
//!
//! Data: the original exercise draws targets independent of the inputs, so there is nothing to learn
//! beyond their mean. Here the dummy data has a target that needs positions: N sequences
//! X of shape `[seq_len, d_model]` ~ N(0, 1) and y = Σ_t c_t·(Σ_j X_tj)/√d with ramp
//! weights c_t = 2(t + 1)/(L(L + 1)) — later tokens count more. A model without
//! positional information pools every position alike and cannot fit it; the learnable
//! encoding lets attention weigh positions. The set is split 80/20 into training and
//! validation once, by a seeded shuffle.

use std::path::Path;

use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attention::{AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig};
use crate::error::{AttnError, Result, check_size};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::positional::{LearnablePositionalEncoding, LearnablePositionalEncodingConfig};
use crate::train::{
    Checkpoint, CheckpointHeader, Metrics, Optimizer, OptimizerConfig, TrainingTask, mse,
};

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeRegressionConfig {
    /// Tokens per sequence. Default: 10.
    pub seq_len: usize,
    /// Model width. Default: 16.
    pub d_model: usize,
    /// Heads. Default: 4.
    pub num_heads: usize,
    /// Sequences in the dataset (80% train, 20% validation).
    pub samples: usize,
    /// Sequences per step. Default: 32.
    pub batch_size: usize,
    /// Default: Adam, lr 1e-4.
    pub optimizer: OptimizerConfig,
    /// Add the learnable positional encoding (turn off to see why it is needed).
    pub positional: bool,
    /// Seed of the weights, the data and the shuffles.
    pub seed: u64,
}

impl Default for PeRegressionConfig {
    fn default() -> Self {
        Self {
            seq_len: 10,
            d_model: 16,
            num_heads: 4,
            samples: 2048,
            batch_size: 32,
            optimizer: OptimizerConfig::Adam { lr: 1e-4 },
            positional: true,
            seed: 0,
        }
    }
}

/// The dummy dataset: inputs `[N, L, d]` and targets `[N]`, row-major.
pub fn dummy_data(config: &PeRegressionConfig, rng: &mut SplitMix64) -> (Vec<f32>, Vec<f32>) {
    let (n, l, d) = (config.samples, config.seq_len, config.d_model);
    let x: Vec<f32> = (0..n * l * d).map(|_| rng.normal() as f32).collect();
    let norm = 2.0 / (l * (l + 1)) as f64;
    let y = x
        .chunks(l * d)
        .map(|seq| {
            seq.chunks(d)
                .enumerate()
                .map(|(t, tok)| (t + 1) as f64 * norm * tok.iter().map(|&v| v as f64).sum::<f64>())
                .sum::<f64>() as f32
                / (d as f32).sqrt()
        })
        .collect();
    (x, y)
}

/// Learnable PE + multi-head self-attention + mean pool + linear.
#[derive(Module, Debug)]
pub struct PeRegressionModel {
    /// `[1, L, d]`, absent with `positional: false`.
    pub positional: Option<LearnablePositionalEncoding>,
    /// Self-attention.
    pub attention: MultiHeadAttention,
    /// d → 1.
    pub head: TorchLinear,
}

impl PeRegressionModel {
    /// Creates the model on `device`.
    ///
    /// # Errors
    ///
    /// If the configuration is out of range.
    pub fn new(config: &PeRegressionConfig, device: &Device) -> Result<Self> {
        Ok(Self {
            positional: if config.positional {
                Some(
                    LearnablePositionalEncodingConfig::new(config.seq_len, config.d_model)
                        .init(device)?,
                )
            } else {
                None
            },
            attention: MultiHeadAttentionConfig::new(config.d_model, config.num_heads)
                .init(device)?,
            head: TorchLinearConfig::new(config.d_model, 1).init(device),
        })
    }

    /// One prediction per sequence.
    ///
    /// - `x`: `[B, L, d]`
    /// - returns: `[B]`
    ///
    /// # Errors
    ///
    /// If the last axis of `x` is not `d_model`, or (with the positional encoding) `x` is longer than `seq_len`.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<1>> {
        let b = x.dims()[0];
        let x = match &self.positional {
            Some(pe) => pe.forward(x)?,
            None => x,
        };
        let attended = self
            .attention
            .forward_self(x, &AttentionMask::none())?
            .output;
        let pooled = attended.mean_dim(1).squeeze_dim::<2>(1);
        Ok(self.head.forward(pooled)?.reshape([b]))
    }
}

/// The regression as the training loop runs it: the model, its optimizer, the split
/// data and the generator of the epochs' shuffles.
pub struct PeRegressionTraining {
    config: PeRegressionConfig,
    model: PeRegressionModel,
    optimizer: Optimizer,
    rng: SplitMix64,
    device: Device,
    train: (Vec<f32>, Vec<f32>),
    val: (Vec<f32>, Vec<f32>),
    /// This epoch's order of the training rows, and how far the epoch has come.
    order: Vec<usize>,
    cursor: usize,
    steps: u64,
}

impl std::fmt::Debug for PeRegressionTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeRegressionTraining")
            .field("config", &self.config)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl PeRegressionTraining {
    /// A fresh run: data, split and weights from `config.seed`.
    ///
    /// # Errors
    /// If the configuration is out of range.
    pub fn new(config: PeRegressionConfig, device: &Device) -> Result<Self> {
        if config.samples < 5 || config.batch_size == 0 || config.seq_len == 0 {
            return Err(AttnError::Config(format!(
                "need at least 5 samples (80/20 split), a batch of 1 and seq_len 1; got {}, {}, {}",
                config.samples, config.batch_size, config.seq_len
            )));
        }
        check_size(
            "the dummy data [samples, seq_len, d_model]",
            &[config.samples, config.seq_len, config.d_model],
        )?;
        let device = device.clone().autodiff();
        let model = crate::train::init_seeded(&device, config.seed, |d| {
            PeRegressionModel::new(&config, d)
        })?;
        let optimizer = config.optimizer.init()?;
        let mut rng = SplitMix64::new(config.seed);
        let (x, y) = dummy_data(&config, &mut rng);
        let row = config.seq_len * config.d_model;
        let mut order: Vec<usize> = (0..config.samples).collect();
        rng.shuffle(&mut order);
        let n_train = config.samples * 4 / 5;
        let gather = |idx: &[usize]| {
            let mut xs = Vec::with_capacity(idx.len() * row);
            let mut ys = Vec::with_capacity(idx.len());
            for &i in idx {
                xs.extend_from_slice(&x[i * row..(i + 1) * row]);
                ys.push(y[i]);
            }
            (xs, ys)
        };
        let train = gather(&order[..n_train]);
        let val = gather(&order[n_train..]);
        Ok(Self {
            config,
            model,
            optimizer,
            rng,
            device,
            train,
            val,
            order: Vec::new(),
            cursor: 0,
            steps: 0,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &PeRegressionConfig {
        &self.config
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sizes of the training and validation splits.
    pub fn split_sizes(&self) -> (usize, usize) {
        (self.train.1.len(), self.val.1.len())
    }

    fn batch(&self, xs: &[f32], ys: &[f32]) -> (Tensor<3>, Tensor<1>) {
        let n = ys.len();
        let (l, d) = (self.config.seq_len, self.config.d_model);
        (
            Tensor::from_data(TensorData::new(xs.to_vec(), [n, l, d]), &self.device),
            Tensor::from_data(TensorData::new(ys.to_vec(), [n]), &self.device),
        )
    }

    /// MSE on the validation split.
    ///
    /// # Errors
    /// Whatever the model refuses.
    pub fn validation_loss(&self) -> Result<f64> {
        let (x, y) = self.batch(&self.val.0, &self.val.1);
        let pred = self.model.forward(x)?.detach();
        Ok(mse(pred, y)?.into_scalar::<f32>() as f64)
    }
}

impl TrainingTask for PeRegressionTraining {
    fn name(&self) -> &'static str {
        "pe-regression"
    }

    fn config_json(&self) -> Value {
        json!(self.config)
    }

    fn steps_per_epoch(&self) -> Option<u64> {
        Some(self.train.1.len().div_ceil(self.config.batch_size) as u64)
    }

    /// One step on the next batch of this epoch's shuffle (a new shuffle when an epoch
    /// begins): its `loss`.
    fn train_step(&mut self) -> Result<Metrics> {
        let row = self.config.seq_len * self.config.d_model;
        let n = self.train.1.len();
        if self.cursor == 0 {
            self.order = (0..n).collect();
            self.rng.shuffle(&mut self.order);
        }
        let end = (self.cursor + self.config.batch_size).min(n);
        let mut xs = Vec::with_capacity((end - self.cursor) * row);
        let mut ys = Vec::with_capacity(end - self.cursor);
        for &i in &self.order[self.cursor..end] {
            xs.extend_from_slice(&self.train.0[i * row..(i + 1) * row]);
            ys.push(self.train.1[i]);
        }
        self.cursor = if end == n { 0 } else { end };
        let (x, y) = self.batch(&xs, &ys);
        let loss = mse(self.model.forward(x)?, y)?;
        let value = loss.clone().into_scalar::<f32>() as f64;
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.steps += 1;
        Ok(vec![("loss", value)])
    }

    /// `val_loss`: MSE on the validation split.
    fn validate(&self) -> Result<Metrics> {
        Ok(vec![("val_loss", self.validation_loss()?)])
    }

    fn checkpoint(&self, mut header: CheckpointHeader) -> Result<Checkpoint> {
        (header.rng_state, header.rng_spare) = self.rng.snapshot();
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)
    }

    /// The data and split are rebuilt from the seed; the rest is restored. Checkpoints
    /// are taken at epoch ends, so the next step starts a new shuffle.
    fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<()> {
        let plain = PeRegressionModel::new(&self.config, &self.device.clone().inner())?;
        self.model = ckpt.load_model(plain, path)?.train();
        let optimizer = self.config.optimizer.init()?;
        self.optimizer = optimizer.load_state_bytes(ckpt.optimizer.clone())?;
        self.rng = SplitMix64::restore(ckpt.header.rng_state, ckpt.header.rng_spare);
        self.steps = ckpt.header.step;
        self.cursor = 0;
        Ok(())
    }
}
