//! The seed tasks: data, models and training runs.

pub mod counting;
pub mod pe_regression;
pub mod sentiment;
