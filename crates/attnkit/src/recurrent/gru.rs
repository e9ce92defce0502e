//! The GRU step, as `torch.nn.GRU`: gates r, z, n in that order, with the reset gate
//! applied to W_hn·h + b_hn (PyTorch's variant, not to h before the product).

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// One step. `x_proj` = W_ih·x + b_ih and `h_proj` = W_hh·h + b_hh, both `[B, 3H]`;
/// `h`: `[B, H]`. Returns h' `[B, H]`.
pub fn step(x_proj: Tensor<2>, h_proj: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
    let hidden = h.dims()[1];
    let xs = |k: usize| x_proj.clone().narrow(1, k * hidden, hidden);
    let hs = |k: usize| h_proj.clone().narrow(1, k * hidden, hidden);
    let r = sigmoid(xs(0) + hs(0));
    let z = sigmoid(xs(1) + hs(1));
    let n = (xs(2) + r * hs(2)).tanh();
    let one_minus_z = z.clone().neg() + 1.0;
    one_minus_z * n + z * h
}
