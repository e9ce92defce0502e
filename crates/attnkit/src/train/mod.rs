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
