//! Training the counting network on fresh random sequences every step.

use std::path::Path;

use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;
use serde_json::{Value, json};

use super::{CountConfig, CountingNet, sample_batch};
use crate::error::{AttnError, Result};
use crate::train::{
    Checkpoint, CheckpointHeader, Metrics, Optimizer, TrainingTask, accuracy, cross_entropy,
    header_for,
};

/// Salts of the generators of the validation and test sequences: both are disjoint
/// streams from training's, fixed by the run's seed.
const VALIDATION_SALT: u64 = 0x5eed_0000_0000_0001;
const TEST_SALT: u64 = 0x5eed_0000_0000_0002;

/// The counting task as the training loop runs it: the network, its optimizer and the
/// generator of the training sequences.
pub struct CountTraining {
    config: CountConfig,
    model: CountingNet,
    optimizer: Optimizer,
    rng: SplitMix64,
    step: u64,
    device: Device,
}

impl std::fmt::Debug for CountTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountTraining")
            .field("config", &self.config)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl CountTraining {
    /// A fresh run: weights and data from `config.seed`, on `device`'s autodiff.
    ///
    /// # Errors
    /// If the configuration is out of range.
    pub fn new(config: CountConfig, device: &Device) -> Result<Self> {
        let device = device.clone().autodiff();
        let model =
            crate::train::init_seeded(&device, config.seed, |d| CountingNet::new(&config, d))?;
        let optimizer = config.optimizer.init()?;
        Ok(Self {
            rng: SplitMix64::new(config.seed),
            config,
            model,
            optimizer,
            step: 0,
            device,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &CountConfig {
        &self.config
    }

    /// Optimizer steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The model.
    pub fn model(&self) -> &CountingNet {
        &self.model
    }

    /// The model without autodiff tracking, and its device, for evaluation.
    fn inference_model(&self) -> (CountingNet, Device) {
        let model = self.model.valid();
        let device = model.query.val().device();
        (model, device)
    }

    /// Accuracy on `n` sequences drawn from a generator seeded with `seed`.
    ///
    /// # Errors
    /// Whatever the model refuses.
    pub fn accuracy_on(&self, n: usize, seed: u64) -> Result<f64> {
        let c = &self.config;
        let (model, device) = self.inference_model();
        let mut rng = SplitMix64::new(seed);
        let mut correct = 0.0;
        let mut left = n;
        while left > 0 {
            let b = left.min(1000);
            let (tokens, labels) = sample_batch(&mut rng, b, c.seq_len, c.vocab);
            let tokens =
                Tensor::<2, Int>::from_data(TensorData::new(tokens, [b, c.seq_len + 2]), &device);
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &device);
            let logits = model.forward(tokens)?;
            correct += accuracy(logits, labels) * b as f64;
            left -= b;
        }
        Ok(correct / n.max(1) as f64)
    }

    /// Accuracy on every possible sequence (vocab^(seq_len + 2) of them: 279,936 for the
    /// default task) and up to `keep` of the sequences it gets wrong.
    ///
    /// # Errors
    /// If there are more than 5·10⁷ sequences, or the model refuses.
    pub fn exhaustive_accuracy(&self, keep: usize) -> Result<(f64, Vec<Vec<i64>>)> {
        let c = &self.config;
        let width = c.seq_len + 2;
        let total = (c.vocab as u64)
            .checked_pow(width as u32)
            .filter(|&n| n <= 50_000_000)
            .ok_or_else(|| {
                AttnError::Config(format!(
                    "{}^{width} sequences are too many to enumerate",
                    c.vocab
                ))
            })? as usize;
        let (model, device) = self.inference_model();
        let mut correct = 0usize;
        let mut wrong = Vec::new();
        let mut start = 0usize;
        while start < total {
            let b = (total - start).min(4096);
            let mut tokens = Vec::with_capacity(b * width);
            let mut labels = Vec::with_capacity(b);
            for index in start..start + b {
                let mut rest = index;
                let row: Vec<i64> = (0..width)
                    .map(|_| {
                        let d = (rest % c.vocab) as i64;
                        rest /= c.vocab;
                        d
                    })
                    .collect();
                let diff: i64 = row[2..]
                    .iter()
                    .map(|&d| i64::from(d == row[0]) - i64::from(d == row[1]))
                    .sum();
                labels.push(diff + c.seq_len as i64);
                tokens.extend_from_slice(&row);
            }
            let t =
                Tensor::<2, Int>::from_data(TensorData::new(tokens.clone(), [b, width]), &device);
            let predicted: Vec<i64> = model
                .forward(t)?
                .detach()
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| AttnError::Value {
                    what: "predictions".into(),
                    why: format!("{e:?}"),
                })?;
            for (i, (p, l)) in predicted.iter().zip(&labels).enumerate() {
                if p == l {
                    correct += 1;
                } else if wrong.len() < keep {
                    wrong.push(tokens[i * width..(i + 1) * width].to_vec());
                }
            }
            start += b;
        }
        Ok((correct as f64 / total as f64, wrong))
    }

    /// Accuracy on the run's fixed validation sequences (2,000, disjoint from training).
    ///
    /// # Errors
    /// Whatever the model refuses.
    pub fn validation_accuracy(&self) -> Result<f64> {
        self.accuracy_on(2_000, self.config.seed ^ VALIDATION_SALT)
    }

    /// Accuracy on `n` freshly generated held-out sequences (the test set).
    ///
    /// # Errors
    /// Whatever the model refuses.
    pub fn test_accuracy(&self, n: usize) -> Result<f64> {
        self.accuracy_on(n, self.config.seed ^ TEST_SALT)
    }

    /// Saves the network and the optimizer at `path` atomically, outside a training loop
    /// (enough to export the network; [`crate::train::Trainer::save_to`] also saves the
    /// loop's state, which resuming needs).
    ///
    /// # Errors
    /// If the state cannot be serialised or the file cannot be written.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint(header_for(self, self.step))?.save(path)
    }
}

impl TrainingTask for CountTraining {
    fn name(&self) -> &'static str {
        "count"
    }

    fn config_json(&self) -> Value {
        json!(self.config)
    }

    fn steps_per_epoch(&self) -> Option<u64> {
        None
    }

    /// One optimizer step on a fresh batch: `loss` and `accuracy` of that batch.
    fn train_step(&mut self) -> Result<Metrics> {
        let c = &self.config;
        let (tokens, labels) = sample_batch(&mut self.rng, c.batch_size, c.seq_len, c.vocab);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(tokens, [c.batch_size, c.seq_len + 2]),
            &self.device,
        );
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(labels, [c.batch_size]), &self.device);
        let logits = self.model.forward(tokens)?;
        let acc = accuracy(logits.clone().detach(), labels.clone());
        let loss = cross_entropy(logits, labels)?;
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.step += 1;
        Ok(vec![("loss", loss_value), ("accuracy", acc)])
    }

    /// `val_accuracy` on the 2,000 fixed validation sequences.
    fn validate(&self) -> Result<Metrics> {
        Ok(vec![("val_accuracy", self.validation_accuracy()?)])
    }

    fn checkpoint(&self, mut header: CheckpointHeader) -> Result<Checkpoint> {
        (header.rng_state, header.rng_spare) = self.rng.snapshot();
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)
    }

    fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<()> {
        // Load into a plain-device model, then wrap it for training: parameters loaded
        // straight into an autodiff model would not be tracked, and would silently stop
        // learning.
        let plain = CountingNet::new(&self.config, &self.device.clone().inner())?;
        self.model = ckpt.load_model(plain, path)?.train();
        let optimizer = self.config.optimizer.init()?;
        self.optimizer = optimizer.load_state_bytes(ckpt.optimizer.clone())?;
        self.rng = SplitMix64::restore(ckpt.header.rng_state, ckpt.header.rng_spare);
        self.step = ckpt.header.step;
        Ok(())
    }
}
