//! Recurrent baselines with PyTorch's gates, layouts and parameter names:
//! [`rnn`] (tanh), [`lstm`], [`gru`], each uni- or bidirectional and stacked by
//! [`network`], batch first, with per-sequence lengths so that padded batches give the
//! same result per sequence as unpadded ones.
//!
//! | kind | gates (rows of `weight_ih_l{k}`, in order) | step |
//! | --- | --- | --- |
//! | `rnn` | — | h' = tanh(W_ih x + b_ih + W_hh h + b_hh) |
//! | `lstm` | i, f, g, o | c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c') |
//! | `gru` | r, z, n | n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 − z)·n + z·h |

pub mod gru;
mod host;
pub mod lstm;
pub mod network;
pub mod rnn;
pub mod scan_operation;

pub use network::{Recurrent, RecurrentConfig, RecurrentKind, RecurrentOutput};
