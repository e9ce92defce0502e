//! Training a sentiment network: shuffled mini-batches of encoded reviews, or batches
//! from a Burn data loader whose workers tokenize while the model trains.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use attnkit_kernels::rng::SplitMix64;
use burn::data::dataloader::DataLoader;
use burn::prelude::*;
use serde_json::{Value, json};

use super::{EmbeddingKind, Encoded, SentimentConfig, SentimentNet};
use crate::data::{Glove, Oov, ReviewBatch, Vocabulary};
use crate::error::{AttnError, Result};
use crate::train::{
    Checkpoint, CheckpointHeader, Metrics, Optimizer, TrainingTask, accuracy, cross_entropy,
    header_for,
};

/// Batches a loader thread has ready before the model asks for them.
const LOADER_QUEUE: usize = 4;

/// A sentiment run as the training loop runs it: data encoded once (or a data loader),
/// then epochs of shuffled mini-batches.
pub struct SentimentTraining {
    config: SentimentConfig,
    model: SentimentNet,
    optimizer: Optimizer,
    device: Device,
    rng: SplitMix64,
    train: Encoded,
    validation: Option<Encoded>,
    /// This epoch's order of the training rows, and how far the epoch has come.
    order: Vec<usize>,
    cursor: usize,
    loader: Option<Arc<dyn DataLoader<ReviewBatch>>>,
    /// The current epoch's batches from the loader's thread, and how many were taken.
    feed: Option<(Receiver<std::result::Result<ReviewBatch, String>>, u64)>,
    steps: u64,
    /// The network at the epoch with the best validation accuracy so far (set by
    /// `validate`, which the loop calls with `&self`), and where it is saved.
    best: Mutex<Option<Best>>,
    best_path: Option<PathBuf>,
}

/// The best validation epoch's network.
#[derive(Debug, Clone)]
struct Best {
    val_accuracy: f64,
    step: u64,
    model: SentimentNet,
}

impl std::fmt::Debug for SentimentTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentimentTraining")
            .field("config", &self.config)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl SentimentTraining {
    /// Sets up a run on encoded training data; `glove` initialises the embedding when
    /// the config asks for GloVe.
    ///
    /// # Errors
    /// If the config asks for GloVe and none is given, or the network cannot be built.
    pub fn new(
        config: SentimentConfig,
        vocab: &Vocabulary,
        glove: Option<&Glove>,
        train: Encoded,
        device: &Device,
    ) -> Result<Self> {
        if config.embedding == EmbeddingKind::Glove && glove.is_none() {
            return Err(AttnError::Config(
                "embedding `glove` needs GloVe vectors, got none".into(),
            ));
        }
        if config.batch_size == 0 || config.max_len == 0 {
            return Err(AttnError::Config(format!(
                "batch_size and max_len must be at least 1, got {} and {}",
                config.batch_size, config.max_len
            )));
        }
        if !(0.0..1.0).contains(&config.dropout) {
            return Err(AttnError::Config(format!(
                "dropout must be in [0, 1), got {}",
                config.dropout
            )));
        }
        train.check("training reviews", config.max_len)?;
        let device = device.clone().autodiff();
        let rows = glove
            .filter(|_| config.embedding == EmbeddingKind::Glove)
            .map(|g| {
                let (m, _) = g.embedding_matrix(
                    vocab,
                    Oov::Random {
                        std: 0.1,
                        seed: config.seed,
                    },
                );
                (m, g.dim())
            });
        let model = crate::train::init_seeded(&device, config.seed, |d| {
            SentimentNet::new(
                &config,
                vocab.len(),
                rows.as_ref().map(|(m, d)| (m.as_slice(), *d)),
                d,
            )
        })?;
        Ok(Self {
            optimizer: config.optimizer.init()?,
            rng: SplitMix64::new(config.seed),
            config,
            model,
            device,
            train,
            validation: None,
            order: Vec::new(),
            cursor: 0,
            loader: None,
            feed: None,
            steps: 0,
            best: Mutex::new(None),
            best_path: None,
        })
    }

    /// Saves the network of the best validation epoch so far at `path` (atomically,
    /// each time it changes), so that a resumed run still knows it; [`Self::evaluate_best`]
    /// evaluates it.
    pub fn with_best_checkpoint(mut self, path: PathBuf) -> Self {
        self.best_path = Some(path);
        self
    }

    /// The step and validation accuracy of the best validation epoch so far.
    pub fn best_epoch(&self) -> Option<(u64, f64)> {
        self.best
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|b| (b.step, b.val_accuracy))
    }

    /// Accuracy on `data` of the network of the best validation epoch (model selection
    /// on the validation reviews; the current network when there is no validation).
    ///
    /// # Errors
    /// As [`Self::evaluate`].
    pub fn evaluate_best(&self, data: &Encoded) -> Result<f64> {
        let best = self.best.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match best {
            Some(b) => evaluate_model(&b.model, &self.config, data, |d, rows, dev| {
                self.batch(d, rows, dev)
            }),
            None => self.evaluate(data),
        }
    }

    /// Validates on `data` at every logging point (`val_accuracy`).
    ///
    /// # Errors
    /// If `data` is not encoded at the run's `max_len` (see [`Encoded::check`]).
    pub fn with_validation(mut self, data: Encoded) -> Result<Self> {
        data.check("validation reviews", self.config.max_len)?;
        self.validation = Some(data);
        Ok(self)
    }

    /// Takes the training batches from `loader` (see [`crate::data::ReviewLoaderConfig`])
    /// instead of the encoded data: its workers tokenize and batch while the model
    /// trains. Batches must be on [`SentimentTraining::device`] and of the config's
    /// `batch_size` (an epoch is `ceil(items / batch_size)` steps). With workers the batch
    /// order varies from run to run; the encoded data is the reproducible path.
    pub fn with_loader(mut self, loader: Arc<dyn DataLoader<ReviewBatch>>) -> Self {
        self.loader = Some(loader);
        self
    }

    /// The network being trained.
    pub fn model(&self) -> &SentimentNet {
        &self.model
    }

    /// The run's configuration.
    pub fn config(&self) -> &SentimentConfig {
        &self.config
    }

    /// Saves the network and the optimizer at `path` atomically, outside a training loop
    /// (enough to export the network; [`crate::train::Trainer::save_to`] also saves the
    /// loop's state, which resuming needs). The header holds the config, the vocabulary
    /// size and the embedding width, which is what [`SentimentNet::from_checkpoint`]
    /// needs to rebuild it.
    ///
    /// # Errors
    /// If the state cannot be serialised or the file cannot be written.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint(header_for(self, self.steps))?.save(path)
    }

    /// Trainable parameters.
    pub fn num_params(&self) -> usize {
        self.model.num_params()
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The device batches must be on (the training device).
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn batch(
        &self,
        data: &Encoded,
        rows: &[usize],
        device: &Device,
    ) -> (Tensor<2, Int>, Vec<usize>, Tensor<1, Int>) {
        let l = self.config.max_len;
        let mut ids = Vec::with_capacity(rows.len() * l);
        let mut lengths = Vec::with_capacity(rows.len());
        let mut labels = Vec::with_capacity(rows.len());
        for &r in rows {
            ids.extend_from_slice(&data.ids[r * l..(r + 1) * l]);
            lengths.push(data.lengths[r]);
            labels.push(data.labels[r]);
        }
        let n = rows.len();
        (
            Tensor::from_data(TensorData::new(ids, [n, l]), device),
            lengths,
            Tensor::from_data(TensorData::new(labels, [n]), device),
        )
    }

    /// The next batch of this epoch's shuffle by the run's own generator (a new
    /// shuffle when an epoch begins: reproducible, and bit-identical on resume).
    fn next_encoded_batch(&mut self) -> (Tensor<2, Int>, Vec<usize>, Tensor<1, Int>) {
        let n = self.train.labels.len();
        if self.cursor == 0 {
            self.order = (0..n).collect();
            self.rng.shuffle(&mut self.order);
        }
        let end = (self.cursor + self.config.batch_size).min(n);
        let batch = self.batch(&self.train, &self.order[self.cursor..end], &self.device);
        self.cursor = if end == n { 0 } else { end };
        batch
    }

    /// The next batch from the loader's thread, which is started when an epoch begins
    /// and dropped when it ends.
    fn next_loader_batch(
        &mut self,
        loader: Arc<dyn DataLoader<ReviewBatch>>,
    ) -> Result<(Tensor<2, Int>, Vec<usize>, Tensor<1, Int>)> {
        let per_epoch = self.steps_per_epoch().unwrap_or(0);
        let (rx, taken) = self.feed.get_or_insert_with(|| {
            let (tx, rx) = sync_channel(LOADER_QUEUE);
            std::thread::spawn(move || {
                for batch in loader.iter() {
                    if tx.send(batch.map_err(|e| e.to_string())).is_err() {
                        break;
                    }
                }
            });
            (rx, 0)
        });
        let batch = match rx.recv() {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => return Err(AttnError::Config(format!("data loader: {e}"))),
            Err(_) => {
                return Err(AttnError::Config(format!(
                    "data loader: the epoch ended after {taken} of {per_epoch} batches"
                )));
            }
        };
        *taken += 1;
        if *taken >= per_epoch {
            self.feed = None;
        }
        Ok((batch.ids, batch.lengths, batch.labels))
    }

    /// Accuracy on encoded reviews.
    ///
    /// # Errors
    /// If `data` is not encoded at the run's `max_len` (see [`Encoded::check`]), or
    /// whatever the model refuses.
    pub fn evaluate(&self, data: &Encoded) -> Result<f64> {
        evaluate_model(&self.model, &self.config, data, |d, rows, dev| {
            self.batch(d, rows, dev)
        })
    }
}

/// Accuracy of `model` on encoded reviews, in batches of 256 without autodiff.
fn evaluate_model(
    model: &SentimentNet,
    config: &SentimentConfig,
    data: &Encoded,
    batch: impl Fn(&Encoded, &[usize], &Device) -> (Tensor<2, Int>, Vec<usize>, Tensor<1, Int>),
) -> Result<f64> {
    data.check("reviews", config.max_len)?;
    let model = model.valid();
    let device = model.classifier.weight.val().device();
    let n = data.labels.len();
    let rows: Vec<usize> = (0..n).collect();
    let mut correct = 0.0;
    for chunk in rows.chunks(256) {
        let (ids, lengths, labels) = batch(data, chunk, &device);
        correct += accuracy(model.forward(ids, &lengths)?, labels) * chunk.len() as f64;
    }
    Ok(correct / n.max(1) as f64)
}

impl TrainingTask for SentimentTraining {
    fn name(&self) -> &'static str {
        "imdb"
    }

    fn config_json(&self) -> Value {
        json!(self.config)
    }

    fn steps_per_epoch(&self) -> Option<u64> {
        let items = match &self.loader {
            Some(loader) => loader.num_items(),
            None => self.train.labels.len(),
        };
        Some(items.div_ceil(self.config.batch_size.max(1)) as u64)
    }

    /// One optimizer step on the next batch: its `loss` and `accuracy` (before the
    /// step).
    fn train_step(&mut self) -> Result<Metrics> {
        let (ids, lengths, labels) = match self.loader.clone() {
            Some(loader) => self.next_loader_batch(loader)?,
            None => self.next_encoded_batch(),
        };
        if self.config.dropout > 0.0 {
            // Dropout draws from the device's generator: seeding it from the run's own
            // (which checkpoints keep) makes a resumed run draw the same masks.
            self.device.seed(self.rng.next_u64());
        }
        let logits = self.model.forward(ids, &lengths)?;
        let acc = accuracy(logits.clone().detach(), labels.clone());
        let loss = cross_entropy(logits, labels)?;
        let l = loss.clone().into_scalar::<f32>() as f64;
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.steps += 1;
        Ok(vec![("loss", l), ("accuracy", acc)])
    }

    /// `val_accuracy` on the validation reviews, if the run has them; a better one than
    /// any before makes this network the best (saved where
    /// [`SentimentTraining::with_best_checkpoint`] says).
    fn validate(&self) -> Result<Metrics> {
        let Some(data) = &self.validation else {
            return Ok(Vec::new());
        };
        let acc = self.evaluate(data)?;
        let mut best = self.best.lock().unwrap_or_else(|e| e.into_inner());
        if best.as_ref().is_none_or(|b| acc > b.val_accuracy) {
            if let Some(path) = &self.best_path {
                let mut header = header_for(self, self.steps);
                header.extra["best_val_accuracy"] = json!(acc);
                let [vocab_len, dim] = self.model.embedding.weight.val().dims();
                header.extra["vocab_len"] = json!(vocab_len);
                header.extra["embedding_dim"] = json!(dim);
                Checkpoint::new(header, &self.model, Vec::new())?.save(path)?;
            }
            *best = Some(Best {
                val_accuracy: acc,
                step: self.steps,
                model: self.model.clone(),
            });
        }
        Ok(vec![("val_accuracy", acc)])
    }

    fn checkpoint(&self, mut header: CheckpointHeader) -> Result<Checkpoint> {
        let [vocab_len, dim] = self.model.embedding.weight.val().dims();
        (header.rng_state, header.rng_spare) = self.rng.snapshot();
        header.extra["vocab_len"] = json!(vocab_len);
        header.extra["embedding_dim"] = json!(dim);
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)
    }

    /// Checkpoints are taken at epoch ends, so the next step starts a new epoch.
    fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<()> {
        let (_, model) = SentimentNet::from_checkpoint(ckpt, path, &self.device.clone().inner())?;
        self.model = model.train();
        let optimizer = self.config.optimizer.init()?;
        self.optimizer = optimizer.load_state_bytes(ckpt.optimizer.clone())?;
        self.rng = SplitMix64::restore(ckpt.header.rng_state, ckpt.header.rng_spare);
        self.steps = ckpt.header.step;
        self.cursor = 0;
        self.feed = None;
        // The best epoch so far, as the run saved it (a best epoch after this checkpoint
        // was not reached in this history).
        let best = match &self.best_path {
            Some(p) if p.exists() => {
                let saved = Checkpoint::load(p)?;
                let val = saved.header.extra["best_val_accuracy"].as_f64();
                match val {
                    Some(v) if saved.header.step <= self.steps => {
                        let (_, model) =
                            SentimentNet::from_checkpoint(&saved, p, &self.device.clone().inner())?;
                        Some(Best {
                            val_accuracy: v,
                            step: saved.header.step,
                            model: model.fork(&self.device),
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        *self.best.lock().unwrap_or_else(|e| e.into_inner()) = best;
        Ok(())
    }
}
