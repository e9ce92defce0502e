//! The example tasks: data, models, and the tasks the training loop runs.

pub mod counting;
pub mod enhance;
pub mod pe_regression;
pub mod sentiment;
