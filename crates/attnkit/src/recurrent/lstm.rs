//! The LSTM step, as `torch.nn.LSTM`: gates i, f, g, o in that order.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// One step. `x_proj` = W_ih·x + b_ih and `h_proj` = W_hh·h + b_hh, both `[B, 4H]`;
/// `c`: `[B, H]`. Returns (h', c'), both `[B, H]`.
pub fn step(x_proj: Tensor<2>, h_proj: Tensor<2>, c: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let gates = x_proj + h_proj;
    let hidden = gates.dims()[1] / 4;
    let gate = |k: usize| gates.clone().narrow(1, k * hidden, hidden);
    let (i, f, g, o) = (
        sigmoid(gate(0)),
        sigmoid(gate(1)),
        gate(2).tanh(),
        sigmoid(gate(3)),
    );
    let c = f * c + i * g;
    let h = o * c.clone().tanh();
    (h, c)
}
