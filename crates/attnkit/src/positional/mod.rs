//! Positional encodings: attention is permutation-equivariant, so order must be added.

pub mod learnable;
pub mod sinusoidal;

pub use learnable::{LearnablePositionalEncoding, LearnablePositionalEncodingConfig};
pub use sinusoidal::{SinusoidalPositionalEncoding, SinusoidalPositionalEncodingConfig};
