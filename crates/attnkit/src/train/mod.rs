//! The training stack: losses, optimizers, checkpoints.
//!
//! Deliberately small (Burn's `train` crate would double the build): a task owns its
//! model, an [`Optimizer`] and a seeded data generator, takes one step at a time, and
//! can be saved to and resumed from a [`Checkpoint`] with bit-identical results.

pub mod checkpoint;
pub mod loss;
pub mod optimizer;

pub use checkpoint::{Checkpoint, CheckpointHeader};
pub use loss::{accuracy, cross_entropy, mse};
pub use optimizer::{Optimizer, OptimizerConfig};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Burn initialises parameters lazily, on first use, from the device's generator; the
/// order of first use (and so which random numbers each parameter gets) is then up to the
/// forward pass. Materialising every parameter right after `device.seed(..)` and
/// construction, in the module's declaration order, makes a seed fix the weights.
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
