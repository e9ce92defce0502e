//! Every exported module runs in tract (a second, pure-Rust ONNX runtime) and matches
//! the Burn forward of the same module (`attnkit::contract::forward`) and, for the
//! committed fixtures, the independent PyTorch/numpy oracle.
//!
//! Tolerances: |got − want| <= atol + rtol·|want| element-wise. Against Burn: atol
//! 1e-5, rtol 1e-4 (f32 against f32, different summation orders); Aaren at 3,000 tokens
//! with scores in the thousands: atol 2e-4, rtol 2e-3 (its acceptance bound). Against
//! the fixtures: each case's own tolerance from `case.json`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod aaren;
mod attention;
mod checkpoints;
mod enhance;
mod fixtures;
mod recurrent;
mod runner;
