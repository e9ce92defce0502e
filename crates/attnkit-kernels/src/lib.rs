//! Dependency-free kernels for attnkit.
//!
//! `#![no_std]`, no dependencies, usable on a microcontroller:
//!
//! - [`softmax`]: row-wise softmax written by hand, stable for huge and masked logits.
//! - [`reference`](mod@reference) (feature `alloc`, on by default): naive `f64` attention — single-head
//!   self-attention with N(0,1) weights, scaled dot-product attention with padding and
//!   causal masks, PyTorch-layout multi-head attention. It is the oracle the Burn
//!   modules of the `attnkit` crate are tested against.
//! - [`aaren`]: the Aaren state, update, associative combine and an allocation-free
//!   stream; [`kv_cache`] (feature `alloc`): the KV-cache decoder it is compared with.
//! - [`math`], [`rng`]: `exp`/`ln`/`sqrt` and a seeded generator, since `core` has neither.
//!
//! ```
//! use attnkit_kernels::softmax::softmax_in_place;
//! let mut row = [1.0e4_f32, 1.0e4 + 1.0, f32::NEG_INFINITY];
//! softmax_in_place(&mut row);
//! assert!((row[0] + row[1] - 1.0).abs() < 1e-6 && row[2] == 0.0);
//! ```
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod aaren;
pub mod error;
#[cfg(feature = "alloc")]
pub mod kv_cache;
pub mod math;
pub mod real;
#[cfg(feature = "alloc")]
pub mod reference;
pub mod rng;
pub mod softmax;

pub use error::KernelError;
pub use real::Real;
