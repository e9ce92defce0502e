//! Attention as an RNN (Aaren; Feng et al. 2024, arXiv 2405.13956): softmax attention
//! of one fixed query over a growing prefix, computed in constant memory.
//!
//! For scores s_1..s_k and values v_1..v_k, the output o_k = Σ_i e^(s_i) v_i / Σ_i e^(s_i)
//! is carried as a state (m, c, a) per head: the running maximum m_k = max_i s_i, the
//! rescaled denominator c_k = Σ_i e^(s_i − m_k) and the rescaled numerator
//! a_k = Σ_i e^(s_i − m_k) v_i, so that o_k = a_k / c_k. One step is
//!
//! ```text
//! m_k = max(m_{k−1}, s_k)
//! a_k = a_{k−1}·e^(m_{k−1} − m_k) + v_k·e^(s_k − m_k)
//! c_k = c_{k−1}·e^(m_{k−1} − m_k) + e^(s_k − m_k)
//! ```
//!
//! with m_0 = −inf, c_0 = 0, a_0 = 0 — not m_0 = 0: with 0, a prefix of very negative
//! scores gives e^(s − 0) = 0 for every term and o = 0/0. The same triple is the element
//! of an associative scan: a token is the leaf (s, 1, v) and
//!
//! ```text
//! (m_A, w_A, u_A) ⊕ (m_B, w_B, u_B) = (M, w_A·e^(m_A−M) + w_B·e^(m_B−M), u_A·e^(m_A−M) + u_B·e^(m_B−M)),
//! M = max(m_A, m_B)
//! ```
//!
//! whose identity is (−inf, 0, 0). The step above is `state ⊕ leaf`. Where M = −inf
//! (both sides empty) the exponent −inf − (−inf) is NaN; [`combine`] returns the
//! identity there instead.
//!
//! Everything here works in caller-provided slices: no allocation, usable on `no_std`
//! targets. One head's state is `d_head + 2` numbers laid out `[m, c, a_0 .. a_{d−1}]`;
//! a layer of `heads` heads needs [`state_len`]`(heads, d_head)` = heads·(d_head + 2).//!
//! | file | what |
//! | --- | --- |
//! | [`state`] | one head's state: identity, combine, update, output, a whole sequence |
//! | [`compensated`] | the update with compensated (Kahan) sums |
//! | [`gradient`] | every prefix output and its gradient, one pass each way |
//! | [`stream`] | [`AarenStream`], the allocation-free stream over a state buffer |
//! | [`folded_layer`] | a whole layer per token, its query folded into the keys |

pub mod compensated;
pub mod folded_layer;
pub mod gradient;
pub mod state;
pub mod stream;

pub use compensated::{compensated_head_len, output_compensated, update_compensated};
pub use folded_layer::{AarenLayerWeights, fold_query, step_layer};
pub use state::{combine, output, reset, scan_head, state_len, update};
pub use stream::AarenStream;

/// Direct softmax in f64 over a prefix: the definition, no recurrence.
#[cfg(test)]
fn direct_softmax(scores: &[f64], values: &[f64], d: usize) -> [f64; 4] {
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut num = [0.0; 4];
    let mut den = 0.0;
    for (i, s) in scores.iter().enumerate() {
        let w = (s - m).exp();
        den += w;
        for p in 0..d {
            num[p] += w * values[i * d + p];
        }
    }
    num.map(|x| x / den)
}
