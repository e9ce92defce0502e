//! The seed tasks: data, models and training runs.

pub mod counting;
