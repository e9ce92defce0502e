//! The Elman RNN step with tanh, as `torch.nn.RNN(nonlinearity="tanh")`.

use burn::prelude::*;

/// One step. `x_proj` = W_ih·x + b_ih (precomputed for the whole sequence),
/// `h_proj` = W_hh·h + b_hh; both `[B, H]`. Returns h' `[B, H]`.
pub fn step(x_proj: Tensor<2>, h_proj: Tensor<2>) -> Tensor<2> {
    (x_proj + h_proj).tanh()
}
