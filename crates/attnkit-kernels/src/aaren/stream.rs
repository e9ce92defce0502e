//! [`AarenStream`]: a constant-memory stream of tokens over a caller-provided state.

use super::state::{output, reset, state_len, update};
use crate::error::{KernelError, check_len};
use crate::real::Real;

/// A constant-memory Aaren stream over a caller-provided state buffer.
///
/// ```
/// use attnkit_kernels::aaren::{AarenStream, state_len};
/// let (heads, d_head) = (2, 3);
/// let mut buf = [0.0f32; state_len(2, 3)];
/// let mut stream = AarenStream::new(heads, d_head, &mut buf).unwrap();
/// let mut out = [0.0f32; 6];
/// // Token 1: scores per head, values [heads·d_head].
/// stream.push(&[0.5, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut out).unwrap();
/// assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]); // one token: o = v
/// ```
#[derive(Debug)]
pub struct AarenStream<'s, T> {
    pub(super) heads: usize,
    pub(super) d_head: usize,
    pub(super) state: &'s mut [T],
}

impl<'s, T: Real> AarenStream<'s, T> {
    /// A stream over `state`, which must hold exactly [`state_len`]`(heads, d_head)`
    /// numbers; it is reset to the empty prefix.
    ///
    /// # Errors
    ///
    /// As [`AarenStream::resume`].
    pub fn new(heads: usize, d_head: usize, state: &'s mut [T]) -> Result<Self, KernelError> {
        let mut s = Self::resume(heads, d_head, state)?;
        s.reset();
        Ok(s)
    }

    /// A stream over a `state` buffer that already holds a state (from an earlier
    /// stream over it); nothing is reset.
    ///
    /// # Errors
    ///
    /// [`KernelError::Invalid`] if `heads` or `d_head` is 0; [`KernelError::Length`] if
    /// `state` is not [`state_len`]`(heads, d_head)` numbers.
    pub fn resume(heads: usize, d_head: usize, state: &'s mut [T]) -> Result<Self, KernelError> {
        if heads == 0 || d_head == 0 {
            return Err(KernelError::Invalid {
                what: "heads, d_head",
                why: "must be at least 1",
            });
        }
        check_len("state", state, state_len(heads, d_head))?;
        Ok(Self {
            heads,
            d_head,
            state,
        })
    }

    /// Forgets every token seen.
    pub fn reset(&mut self) {
        for head in self.state.chunks_exact_mut(self.d_head + 2) {
            reset(head);
        }
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Width of a head.
    pub fn d_head(&self) -> usize {
        self.d_head
    }

    /// The raw state `[heads][m, c, a_0..a_{d−1}]`.
    pub fn state(&self) -> &[T] {
        self.state
    }

    /// Feeds one token and writes the output of every head after it.
    ///
    /// - `scores`: `[heads]`, the query–key score of this token per head (−inf = masked)
    /// - `values`: `[heads·d_head]`
    /// - `out`: `[heads·d_head]`, o_k per head, concatenated (zeros before any token)
    ///
    /// # Errors
    ///
    /// [`KernelError::Length`] if `scores`, `values` or `out` has the wrong length.
    pub fn push(&mut self, scores: &[T], values: &[T], out: &mut [T]) -> Result<(), KernelError> {
        let width = self.heads * self.d_head;
        check_len("scores", scores, self.heads)?;
        check_len("values", values, width)?;
        check_len("out", out, width)?;
        let d = self.d_head;
        for (h, head) in self.state.chunks_exact_mut(d + 2).enumerate() {
            update(head, scores[h], &values[h * d..(h + 1) * d]);
            output(head, &mut out[h * d..(h + 1) * d]);
        }
        Ok(())
    }

    /// Writes the current outputs without feeding a token.
    ///
    /// # Errors
    ///
    /// [`KernelError::Length`] if `out` does not hold `heads · d_head` numbers.
    pub fn current(&self, out: &mut [T]) -> Result<(), KernelError> {
        check_len("out", out, self.heads * self.d_head)?;
        let d = self.d_head;
        for (h, head) in self.state.chunks_exact(d + 2).enumerate() {
            output(head, &mut out[h * d..(h + 1) * d]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_change_nothing_and_empty_prefix_is_zero() {
        let mut buf = [0.0f32; state_len(1, 2)];
        let mut s = AarenStream::new(1, 2, &mut buf).unwrap();
        let mut out = [9.0f32; 2];
        s.push(&[f32::NEG_INFINITY], &[1.0, 1.0], &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0]);
        s.push(&[2.0], &[4.0, 6.0], &mut out).unwrap();
        s.push(&[f32::NEG_INFINITY], &[100.0, 100.0], &mut out)
            .unwrap();
        assert_eq!(out, [4.0, 6.0]);
    }

    /// Self-attention from the cell: for each query q_i, run a fresh cell over
    /// the keys k_1..k_i with scores q_i·k_j/√d; its output after token i is row i of
    /// causal scaled dot-product attention.
    #[test]
    fn causal_self_attention_from_the_cell() {
        use crate::reference::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
        const L: usize = 6;
        const D: usize = 3;
        let mut g = crate::rng::SplitMix64::new(21);
        let mut draw = || -> [f64; L * D] { core::array::from_fn(|_| g.normal() * 2.0) };
        let (q, k, v) = (draw(), draw(), draw());
        let want = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            SdpaShape {
                batch: 1,
                heads: 1,
                len_q: L,
                len_k: L,
                d_k: D,
                d_v: D,
            },
            SdpaOptions {
                scale: None,
                causal: true,
                key_padding_mask: None,
            },
        )
        .unwrap();
        for i in 0..L {
            let mut buf = [0.0f64; state_len(1, D)];
            let mut cell = AarenStream::new(1, D, &mut buf).unwrap();
            let mut out = [0.0f64; D];
            for j in 0..=i {
                let s = crate::real::dot(&q[i * D..(i + 1) * D], &k[j * D..(j + 1) * D])
                    / crate::math::sqrt(D as f64);
                cell.push(&[s], &v[j * D..(j + 1) * D], &mut out).unwrap();
            }
            for (o, w) in out.iter().zip(&want.output[i * D..(i + 1) * D]) {
                assert!((o - w).abs() < 1e-12, "row {i}: {o} vs {w}");
            }
        }
    }

    #[test]
    fn buffer_sizes_are_checked() {
        let mut buf = [0.0f32; 7];
        let err = AarenStream::new(2, 2, &mut buf).unwrap_err();
        assert_eq!(
            err,
            KernelError::Length {
                what: "state",
                expected: 8,
                got: 7
            }
        );
    }
}
