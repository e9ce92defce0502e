//! The training stack: losses, optimizers, checkpoints, and the one training loop.
//!
//! Deliberately small (Burn's `train` crate would double the build): a task
//! ([`TrainingTask`]) owns its model, an [`Optimizer`] and a seeded data generator and
//! takes one step at a time; the [`Trainer`] runs it — logging windows, validation,
//! early stopping, a [`Checkpoint`] on a schedule, exact resume, the history as CSV —
//! the same way for every task.

pub mod checkpoint;
pub mod history;
pub mod loss;
pub mod optimizer;
pub mod task;
pub mod trainer;

pub use checkpoint::{Checkpoint, CheckpointHeader};
pub use history::{LogRow, Window, history_csv};
pub use loss::{accuracy, cross_entropy, mse};
pub use optimizer::{Optimizer, OptimizerConfig};
pub use task::{Metrics, TrainingTask, header_for};
pub use trainer::{Every, Progress, TrainPlan, Trainer};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Burn initialises parameters lazily, on first use, from the device's generator; the
/// order of first use (and so which random numbers each parameter gets) is then up to the
/// forward pass. Materialising every parameter right after `device.seed(..)` and
/// construction, in the module's declaration order, makes a seed fix the weights.
pub fn materialize<M: Module>(module: &M) {
    materialize_params(module)
}

/// A module whose weights are drawn from `seed` on the CPU backend (with autodiff when
/// `device` has it), materialised ([`materialize`]) and then forked to `device` (moved,
/// as trainable leaves). Each
/// backend's generator draws its own numbers, so drawing on one and moving makes a seed
/// give the same weights on every backend.
///
/// # Errors
///
/// Whatever `build` returns.
pub fn init_seeded<M: Module>(
    device: &Device,
    seed: u64,
    build: impl FnOnce(&Device) -> crate::Result<M>,
) -> crate::Result<M> {
    let cpu = if device.is_autodiff() {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    cpu.seed(seed);
    let model = build(&cpu)?;
    materialize(&model);
    Ok(if crate::device::is_cpu_backend(device) {
        model
    } else {
        model.fork(device)
    })
}

fn materialize_params<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
