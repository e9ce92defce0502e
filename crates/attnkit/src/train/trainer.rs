//! The training loop every task runs on: steps, logging windows, validation, early
//! stopping, atomic checkpoints with exact resume, and the history as rows and CSV.
//!
//! ```no_run
//! use attnkit::tasks::counting::{CountConfig, CountTraining};
//! use attnkit::train::{Every, TrainPlan, Trainer};
//! use burn::prelude::*;
//!
//! let task = CountTraining::new(CountConfig::default(), &Device::flex())?;
//! let plan = TrainPlan {
//!     steps: 8000,
//!     log: Every::Steps(100),
//!     checkpoint: Every::Steps(1000),
//!     checkpoint_path: Some("count.ckpt".into()),
//!     stop_at: Some(("val_accuracy".into(), 0.99)),
//! };
//! let mut trainer = Trainer::new(task, plan)?;
//! trainer.run(&mut ())?;
//! println!("{} steps, last row {:?}", trainer.step(), trainer.history().last());
//! # Ok::<(), attnkit::AttnError>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{AttnError, FormatError, Result};
use crate::store::write_atomically;
use crate::train::history::{LogRow, Window, history_csv};
use crate::train::task::header_for;
use crate::train::{Checkpoint, Metrics, TrainingTask};

/// How often something happens during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every this many optimizer steps (at least 1).
    Steps(u64),
    /// At the end of every epoch (tasks with epochs only).
    Epoch,
}

/// What a run does: how long, when it logs and saves, when it stops early.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPlan {
    /// Optimizer steps in all; a resumed run counts the steps it already has.
    pub steps: u64,
    /// When the loop closes a logging window and validates.
    pub log: Every,
    /// When the loop saves a checkpoint (it also saves at the end). A task with epochs
    /// saves at epoch ends only: its data order within an epoch is not in the checkpoint.
    pub checkpoint: Every,
    /// Where checkpoints go; `None`: no checkpoints.
    pub checkpoint_path: Option<PathBuf>,
    /// Stop at the first logging point where this metric is at least this value.
    pub stop_at: Option<(String, f64)>,
}

impl TrainPlan {
    /// `epochs` passes of `steps_per_epoch` steps, logged and saved (at
    /// `checkpoint_path`, if any) at each epoch's end, no early stop.
    ///
    /// # Errors
    /// [`AttnError::Config`] if the step count does not fit in 64 bits.
    pub fn by_epochs(
        epochs: u64,
        steps_per_epoch: u64,
        checkpoint_path: Option<PathBuf>,
    ) -> Result<Self> {
        let steps = epochs.checked_mul(steps_per_epoch).ok_or_else(|| {
            AttnError::Config(format!(
                "{epochs} epochs of {steps_per_epoch} steps are more steps than fit in 64 bits"
            ))
        })?;
        Ok(Self {
            steps,
            log: Every::Epoch,
            checkpoint: Every::Epoch,
            checkpoint_path,
            stop_at: None,
        })
    }
}

/// What the loop reports while it runs (a progress bar, a log). `()` reports nothing.
pub trait Progress {
    /// Before the first step: steps already done (a resumed run) and the plan's total.
    fn on_start(&mut self, _done: u64, _total: u64) {}
    /// After each step, with that batch's metrics.
    fn on_step(&mut self, _step: u64, _metrics: &Metrics) {}
    /// After each logging point.
    fn on_log(&mut self, _row: &LogRow) {}
}

impl Progress for () {}

/// The loop's own state, saved in every checkpoint under `extra["loop"]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    history: Vec<LogRow>,
    window: Window,
}

/// A task, its plan, and the loop's state.
pub struct Trainer<T> {
    task: T,
    plan: TrainPlan,
    step: u64,
    history: Vec<LogRow>,
    window: Window,
    start_step: u64,
    step_seconds: f64,
    stopped_early: bool,
}

impl<T: TrainingTask> std::fmt::Debug for Trainer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("task", &self.task.name())
            .field("plan", &self.plan)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl<T: TrainingTask> Trainer<T> {
    /// A fresh run of `task` under `plan`.
    ///
    /// # Errors
    /// If the plan does not fit the task: a zero interval, epochs asked of a task
    /// without epochs, or checkpoints inside an epoch.
    pub fn new(task: T, plan: TrainPlan) -> Result<Self> {
        check_plan(&task, &plan)?;
        Ok(Self {
            task,
            plan,
            step: 0,
            history: Vec::new(),
            window: Window::default(),
            start_step: 0,
            step_seconds: 0.0,
            stopped_early: false,
        })
    }

    /// Continues the run saved at `path`, which must be a checkpoint of this task and
    /// of exactly its configuration; the task, the history and the current logging
    /// window are restored, so the run goes on bit-identically.
    ///
    /// # Errors
    /// If the file is missing, corrupt, of another task or configuration, or lacks the
    /// loop's state.
    pub fn resume(mut task: T, plan: TrainPlan, path: &Path) -> Result<Self> {
        check_plan(&task, &plan)?;
        let ckpt = Checkpoint::load(path)?;
        ckpt.check_matches(task.name(), &task.config_json(), path)?;
        let state: LoopState =
            serde_json::from_value(ckpt.header.extra.get("loop").cloned().ok_or_else(|| {
                AttnError::File(FormatError::Format {
                    path: path.to_path_buf(),
                    why: "not a valid attnkit checkpoint: the header has no training-loop \
                          state (extra.loop)"
                        .into(),
                })
            })?)
            .map_err(|e| {
                AttnError::File(FormatError::Format {
                    path: path.to_path_buf(),
                    why: format!("not a valid attnkit checkpoint: training-loop state: {e}"),
                })
            })?;
        task.restore(&ckpt, path)?;
        let step = ckpt.header.step;
        Ok(Self {
            task,
            plan,
            step,
            history: state.history,
            window: state.window,
            start_step: step,
            step_seconds: 0.0,
            stopped_early: false,
        })
    }

    /// [`Trainer::resume`] when `resume` is true, else [`Trainer::new`].
    ///
    /// # Errors
    /// As [`Trainer::resume`] or [`Trainer::new`].
    pub fn start(task: T, plan: TrainPlan, resume: bool) -> Result<Self> {
        match (&plan.checkpoint_path, resume) {
            (Some(path), true) => {
                let path = path.clone();
                Self::resume(task, plan, &path)
            }
            (None, true) => Err(AttnError::Config(
                "cannot resume a run that has no checkpoint path".into(),
            )),
            (_, false) => Self::new(task, plan),
        }
    }

    /// Runs until the plan's step count, or until the stopping metric is reached at a
    /// logging point; saves a checkpoint on the plan's schedule and at the end.
    ///
    /// # Errors
    /// Whatever a step, a validation or a save refuses; the last checkpoint on disk
    /// stays intact.
    pub fn run(&mut self, progress: &mut dyn Progress) -> Result<()> {
        progress.on_start(self.step, self.plan.steps);
        self.stopped_early = false;
        while self.step < self.plan.steps {
            let t = Instant::now();
            let metrics = self.task.train_step()?;
            self.step_seconds += t.elapsed().as_secs_f64();
            self.step += 1;
            self.window.add(&metrics);
            progress.on_step(self.step, &metrics);
            if self.due(self.plan.log) {
                let row = self.log()?;
                progress.on_log(&row);
                if let Some((metric, threshold)) = &self.plan.stop_at {
                    if row.get(metric).is_some_and(|v| v >= *threshold) {
                        self.stopped_early = true;
                        break;
                    }
                }
            }
            if self.due(self.plan.checkpoint) {
                self.save()?;
            }
        }
        self.save()
    }

    /// Closes the logging window: the means of the training metrics since the last row
    /// and the validation metrics now, appended to the history.
    ///
    /// # Errors
    /// If validation fails.
    pub fn log(&mut self) -> Result<LogRow> {
        let mut values = self.window.take_means();
        values.extend(
            self.task
                .validate()?
                .into_iter()
                .map(|(n, v)| (n.to_string(), v)),
        );
        let row = LogRow {
            step: self.step,
            epoch: self.task.steps_per_epoch().map(|n| self.step / n.max(1)),
            values,
        };
        self.history.push(row.clone());
        Ok(row)
    }

    fn due(&self, every: Every) -> bool {
        match every {
            Every::Steps(n) => self.step % n.max(1) == 0,
            Every::Epoch => self
                .task
                .steps_per_epoch()
                .is_some_and(|n| self.step % n.max(1) == 0),
        }
    }

    /// Saves a checkpoint at the plan's path (if any), atomically.
    ///
    /// # Errors
    /// If the state cannot be serialised or the file cannot be written.
    pub fn save(&self) -> Result<()> {
        match &self.plan.checkpoint_path {
            Some(path) => self.save_to(path),
            None => Ok(()),
        }
    }

    /// Saves a checkpoint of the task and the loop's state at `path`, atomically.
    ///
    /// # Errors
    /// If the state cannot be serialised or the file cannot be written.
    pub fn save_to(&self, path: &Path) -> Result<()> {
        let mut header = header_for(&self.task, self.step);
        let state = LoopState {
            history: self.history.clone(),
            window: self.window.clone(),
        };
        header.extra = json!({ "loop": state });
        self.task.checkpoint(header)?.save(path)
    }

    /// Writes the history as CSV at `path`, atomically.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomically(path, history_csv(&self.history).as_bytes())
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The task, to change it between runs.
    pub fn task_mut(&mut self) -> &mut T {
        &mut self.task
    }

    /// The plan.
    pub fn plan(&self) -> &TrainPlan {
        &self.plan
    }

    /// Optimizer steps taken in all.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Steps taken by this process (not those before a resume).
    pub fn steps_this_run(&self) -> u64 {
        self.step - self.start_step
    }

    /// Seconds spent in optimizer steps by this process (validation and saving
    /// excluded).
    pub fn step_seconds(&self) -> f64 {
        self.step_seconds
    }

    /// Whether the last [`Trainer::run`] stopped at the stopping metric.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// The rows logged so far.
    pub fn history(&self) -> &[LogRow] {
        &self.history
    }

    /// The first logged step where `metric` reached `threshold`.
    pub fn first_step_reaching(&self, metric: &str, threshold: f64) -> Option<u64> {
        self.history
            .iter()
            .find(|r| r.get(metric).is_some_and(|v| v >= threshold))
            .map(|r| r.step)
    }

    /// `metric` in the last row, if logged.
    pub fn last(&self, metric: &str) -> Option<f64> {
        self.history.last().and_then(|r| r.get(metric))
    }

    /// The part of a run's JSON summary every task shares: task, configuration, steps,
    /// time in steps, the last row's metrics (`final_…`) and the history.
    pub fn summary(&self) -> Value {
        let mut doc = json!({
            "task": self.task.name(),
            "config": self.task.config_json(),
            "steps": self.step,
            "steps_this_run": self.steps_this_run(),
            "train_seconds": self.step_seconds,
            "stopped_early": self.stopped_early,
            "history": self.history,
        });
        if let Some(last) = self.history.last() {
            for (name, value) in &last.values {
                doc[format!("final_{name}")] = json!(value);
            }
        }
        if let Some(path) = &self.plan.checkpoint_path {
            doc["checkpoint"] = json!(path);
        }
        doc
    }
}

fn check_plan<T: TrainingTask>(task: &T, plan: &TrainPlan) -> Result<()> {
    let epochs = task.steps_per_epoch();
    for (what, every) in [("log", plan.log), ("checkpoint", plan.checkpoint)] {
        match (every, epochs) {
            (Every::Steps(0), _) => {
                return Err(AttnError::Config(format!(
                    "{what} interval must be at least 1 step, got 0"
                )));
            }
            (Every::Epoch, None) => {
                return Err(AttnError::Config(format!(
                    "task `{}` has no epochs (fresh data every step): give the {what} \
                     interval in steps",
                    task.name()
                )));
            }
            (Every::Epoch, Some(0)) => {
                return Err(AttnError::Config(format!(
                    "task `{}` has no training data: an epoch of 0 steps",
                    task.name()
                )));
            }
            _ => {}
        }
    }
    // A task with epochs resumes at an epoch's start (its order within an epoch is not
    // saved), so every save, the last one included, must fall on an epoch end.
    if let Some(per_epoch) = epochs.filter(|&n| n > 0) {
        if let Every::Steps(n) = plan.checkpoint {
            if n % per_epoch != 0 {
                return Err(AttnError::Config(format!(
                    "task `{}` saves at epoch ends only ({per_epoch} steps each), got a \
                     checkpoint interval of {n} steps",
                    task.name()
                )));
            }
        }
        if plan.checkpoint_path.is_some() {
            if plan.steps % per_epoch != 0 {
                return Err(AttnError::Config(format!(
                    "task `{}` saves at epoch ends only ({per_epoch} steps each), got a run \
                     of {} steps",
                    task.name(),
                    plan.steps
                )));
            }
            if let (Some(_), Every::Steps(n)) = (&plan.stop_at, plan.log) {
                if n % per_epoch != 0 {
                    return Err(AttnError::Config(format!(
                        "task `{}` saves at epoch ends only ({per_epoch} steps each): an early \
                         stop must be checked at epoch ends, got a log interval of {n} steps",
                        task.name()
                    )));
                }
            }
        }
    }
    if let Some((metric, threshold)) = &plan.stop_at {
        if !threshold.is_finite() {
            return Err(AttnError::Config(format!(
                "stopping value of `{metric}` must be a finite number, got {threshold}"
            )));
        }
    }
    Ok(())
}
