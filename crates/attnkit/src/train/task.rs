//! What a task gives the training loop: one optimizer step, validation metrics, and
//! its own state for checkpoints.

use std::path::Path;

use serde_json::Value;

use crate::error::Result;
use crate::train::{Checkpoint, CheckpointHeader};

/// Named values measured on a batch or a validation set, in a fixed order
/// (`loss`, `accuracy`, …). The order is the column order of the history.
pub type Metrics = Vec<(&'static str, f64)>;

/// A training task the loop in [`crate::train::Trainer`] drives.
///
/// A task owns its model, optimizer, data and data generator. The loop owns the step
/// count, the logging windows, the history and the checkpoint schedule, and saves the
/// task's state ([`TrainingTask::checkpoint`]) together with its own.
pub trait TrainingTask {
    /// The task's name in checkpoints and summaries (`count`, `pe-regression`, `imdb`).
    fn name(&self) -> &'static str;

    /// The configuration as JSON: a checkpoint only resumes into the same one.
    fn config_json(&self) -> Value;

    /// Optimizer steps in one pass over the training data; `None` for a task that draws
    /// fresh data every step (it has no epochs).
    fn steps_per_epoch(&self) -> Option<u64>;

    /// One optimizer step on the next batch; returns that batch's metrics, measured
    /// before the step (`loss`, `accuracy`, …).
    ///
    /// # Errors
    /// Whatever the model or the data refuse.
    fn train_step(&mut self) -> Result<Metrics>;

    /// Metrics on the task's validation data (`val_loss`, `val_accuracy`, …).
    ///
    /// # Errors
    /// Whatever the model refuses.
    fn validate(&self) -> Result<Metrics>;

    /// A checkpoint of the model, the optimizer and the data generator under `header`
    /// (the loop has filled in the task name, the configuration, the step and its own
    /// state in `header.extra["loop"]`; the task adds its generator's state and may add
    /// keys of its own to `header.extra`).
    ///
    /// # Errors
    /// If the model or the optimizer cannot be serialised.
    fn checkpoint(&self, header: CheckpointHeader) -> Result<Checkpoint>;

    /// Restores the model, the optimizer and the data generator from `checkpoint`, read
    /// from `path` (for error messages), whose task and configuration the loop has
    /// already checked.
    ///
    /// # Errors
    /// If the checkpoint's model does not fit this task's model, or its optimizer state
    /// does not load.
    fn restore(&mut self, checkpoint: &Checkpoint, path: &Path) -> Result<()>;
}

/// The header a task's checkpoint starts from: name, configuration and step, with
/// empty generator state and `extra`.
pub fn header_for<T: TrainingTask + ?Sized>(task: &T, step: u64) -> CheckpointHeader {
    CheckpointHeader {
        task: task.name().to_string(),
        config: task.config_json(),
        step,
        rng_state: 0,
        rng_spare: None,
        extra: Value::Object(Default::default()),
        lengths: [0, 0],
        checksum: String::new(),
    }
}
