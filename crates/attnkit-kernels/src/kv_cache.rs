//! Transformer decoding with a KV cache: the baseline an Aaren stream replaces.
//!
//! Causal multi-head self-attention run one token at a time keeps every past key and
//! value (2·E numbers per token) so that each new query can attend to all of them: the
//! memory grows linearly with the tokens seen and each step costs O(t·E). An Aaren
//! stream keeps H·(d + 2) numbers and each step costs O(E²) however long the stream.
//! Written with the same plain loops as [`crate::aaren::step_layer`], so that the two
//! can be timed side by side fairly.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{KernelError, check_len};
use crate::real::{Real, dot};

/// Causal multi-head self-attention (`nn.MultiheadAttention` layout) decoding one token
/// at a time with a growing key/value cache.
#[derive(Debug, Clone)]
pub struct KvCacheDecoder<T> {
    embed: usize,
    heads: usize,
    in_proj_weight: Vec<T>,
    in_proj_bias: Vec<T>,
    out_weight: Vec<T>,
    out_bias: Vec<T>,
    keys: Vec<T>,
    values: Vec<T>,
    scores: Vec<T>,
    qkv: Vec<T>,
    heads_out: Vec<T>,
}

impl<T: Real> KvCacheDecoder<T> {
    /// A decoder with an empty cache.
    ///
    /// - `in_proj_weight`: `[3E, E]`; `in_proj_bias`: `[3E]`
    /// - `out_weight`: `[E, E]`; `out_bias`: `[E]`
    ///
    /// # Errors
    ///
    /// [`KernelError::Invalid`] if `heads` is 0 or does not divide `embed`;
    /// [`KernelError::Length`] for a weight of the wrong length.
    pub fn new(
        embed: usize,
        heads: usize,
        in_proj_weight: &[T],
        in_proj_bias: &[T],
        out_weight: &[T],
        out_bias: &[T],
    ) -> Result<Self, KernelError> {
        let e = embed;
        if heads == 0 || e == 0 || e % heads != 0 {
            return Err(KernelError::Invalid {
                what: "heads",
                why: "must be at least 1 and divide the embedding width",
            });
        }
        check_len("in_proj_weight", in_proj_weight, 3 * e * e)?;
        check_len("in_proj_bias", in_proj_bias, 3 * e)?;
        check_len("out_weight", out_weight, e * e)?;
        check_len("out_bias", out_bias, e)?;
        Ok(Self {
            embed: e,
            heads,
            in_proj_weight: in_proj_weight.to_vec(),
            in_proj_bias: in_proj_bias.to_vec(),
            out_weight: out_weight.to_vec(),
            out_bias: out_bias.to_vec(),
            keys: Vec::new(),
            values: Vec::new(),
            scores: Vec::new(),
            qkv: vec![T::ZERO; 3 * e],
            heads_out: vec![T::ZERO; e],
        })
    }

    /// Tokens in the cache.
    pub fn len(&self) -> usize {
        self.keys.len() / self.embed
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Numbers held for the past tokens (keys and values): 2·E per token.
    pub fn cache_len(&self) -> usize {
        self.keys.len() + self.values.len()
    }

    /// Appends a projected key and value without running a step (to time a step at a
    /// given cache size without decoding every token before it).
    ///
    /// # Errors
    ///
    /// [`KernelError::Length`] if `key` or `value` does not hold E numbers.
    pub fn push_cached(&mut self, key: &[T], value: &[T]) -> Result<(), KernelError> {
        check_len("key", key, self.embed)?;
        check_len("value", value, self.embed)?;
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(value);
        Ok(())
    }

    /// Decodes one token: projects it, appends its key and value, attends its query to
    /// every cached position (itself included) and projects the heads.
    ///
    /// - `x`: `[E]`; `out`: `[E]`
    ///
    /// # Errors
    ///
    /// [`KernelError::Length`] if `x` or `out` does not hold E numbers.
    pub fn step(&mut self, x: &[T], out: &mut [T]) -> Result<(), KernelError> {
        let e = self.embed;
        check_len("x", x, e)?;
        check_len("out", out, e)?;
        for (r, q) in self.qkv.iter_mut().enumerate() {
            *q = self.in_proj_bias[r] + dot(&self.in_proj_weight[r * e..(r + 1) * e], x);
        }
        self.keys.extend_from_slice(&self.qkv[e..2 * e]);
        self.values.extend_from_slice(&self.qkv[2 * e..]);
        let n = self.len();
        let d = e / self.heads;
        let scale = T::ONE / T::from_f64(d as f64).sqrt();
        self.scores.resize(n, T::ZERO);
        for h in 0..self.heads {
            let q = &self.qkv[h * d..(h + 1) * d];
            let mut max = T::NEG_INFINITY;
            for (i, s) in self.scores.iter_mut().enumerate() {
                let k = &self.keys[i * e + h * d..i * e + (h + 1) * d];
                *s = dot(q, k) * scale;
                if *s > max {
                    max = *s;
                }
            }
            let mut den = T::ZERO;
            for s in self.scores.iter_mut() {
                *s = (*s - max).exp();
                den += *s;
            }
            let o = &mut self.heads_out[h * d..(h + 1) * d];
            o.iter_mut().for_each(|x| *x = T::ZERO);
            for (i, s) in self.scores.iter().enumerate() {
                let v = &self.values[i * e + h * d..i * e + (h + 1) * d];
                for p in 0..d {
                    o[p] += *s * v[p];
                }
            }
            o.iter_mut().for_each(|x| *x /= den);
        }
        for (r, o) in out.iter_mut().enumerate() {
            *o = self.out_bias[r] + dot(&self.out_weight[r * e..(r + 1) * e], &self.heads_out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{MhaShape, MhaWeights, multi_head_attention};

    /// Token-by-token decoding equals causal multi-head self-attention over the whole
    /// sequence (the reference), position by position.
    #[test]
    fn decoding_equals_causal_self_attention() {
        let (l, e, h) = (7, 6, 2);
        let mut g = crate::rng::SplitMix64::new(9);
        let mut draw = |n: usize| -> Vec<f64> { (0..n).map(|_| g.normal()).collect() };
        let (w_in, b_in, w_o, b_o, x) = (
            draw(3 * e * e),
            draw(3 * e),
            draw(e * e),
            draw(e),
            draw(l * e),
        );
        let want = multi_head_attention(
            &x,
            &x,
            &x,
            MhaShape {
                batch: 1,
                len_q: l,
                len_k: l,
                embed: e,
                heads: h,
            },
            MhaWeights {
                in_proj_weight: &w_in,
                in_proj_bias: &b_in,
                out_proj_weight: &w_o,
                out_proj_bias: &b_o,
            },
            None,
            true,
        )
        .unwrap();
        let mut dec = KvCacheDecoder::new(e, h, &w_in, &b_in, &w_o, &b_o).unwrap();
        let mut out = vec![0.0; e];
        for t in 0..l {
            dec.step(&x[t * e..(t + 1) * e], &mut out).unwrap();
            for (got, w) in out.iter().zip(&want.output[t * e..(t + 1) * e]) {
                assert!((got - w).abs() < 1e-12, "t {t}: {got} vs {w}");
            }
        }
        assert_eq!(dec.cache_len(), 2 * l * e);
    }
}
