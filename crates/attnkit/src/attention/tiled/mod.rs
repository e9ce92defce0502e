//! A fused, tiled CPU attention kernel for inference: softmax(scale·Q·Kᵀ + masks)·V
//! without the `[B, H, Lq, Lk]` scores or weights (Dao et al. 2022's online softmax).
//!
//! First the keys are packed transposed (`D × Lk` per sequence and head) and the values
//! copied (`Lk × Dv`), both zero-padded to the register tile so the inner loops have no
//! edge cases. Then work is split into tasks of one sequence and [`BLOCK_Q`] queries (all
//! heads), spread over threads. For each head, a task packs its queries (scaled) and
//! walks the keys in blocks of [`BLOCK_K`]:
//!
//! 1. S = Q·Kᵀ for the block;
//! 2. masks S (key padding, causal, the padding of the tile) and folds it into a running
//!    maximum m and sum l per query: the accumulated output is rescaled by e^(m_old − m)
//!    when the maximum grows, and S becomes e^(S − m);
//! 3. O += P·V.
//!
//! At the end O / l is the context (0 for a query whose keys were all masked, as in the
//! weights-returning path). With a causal mask, key blocks past a query block's last
//! query are skipped, which halves the work.
//!
//! Memory: the packed keys and values (the size of K and V; the calling thread keeps
//! these buffers for its next call, up to 64 MB), and per task its queries, one score
//! block and its output rows (about 100 KB at D = Dv = 64), whatever L is.
//!
//! The two products run on one register-tiled micro-kernel ([`MR`] × [`NR`] outputs in
//! registers, fused multiply-adds), and the exponentials on
//! [`expf_fast`](attnkit_kernels::math::expf_fast); each task is dispatched through
//! [`pulp`] so these loops are compiled for AVX2 + FMA (or wider) when the CPU has them
//! and chosen at run time, with no `unsafe` here.//!
//! | file | what |
//! | --- | --- |
//! | `layout` | where an operand's `[B, H, L, D]` elements lie |
//! | `packing` | keys and values packed into panels, buffers kept per thread |
//! | `query_block` | one task: a block of queries through every key block |
//! | `online_softmax` | one key block's softmax with the running maximum and sum |
//! | `micro_kernel` | the register tile both products run on |

use rayon::prelude::*;

mod layout;
mod micro_kernel;
mod online_softmax;
mod packing;
mod query_block;

pub(crate) use layout::HeadLayout;
use packing::{KEEP_PACKING_BUFFERS, PACKING_BUFFERS};
use query_block::QueryBlock;

/// Queries per task.
pub(crate) const BLOCK_Q: usize = 64;
const _: () = assert!(BLOCK_Q % NR == 0 && BLOCK_K % NR == 0);
/// Keys per block of the online softmax.
pub(crate) const BLOCK_K: usize = 256;
/// Width of every panel and of the micro-kernel's register tile (two 8-lane vectors, or
/// one 16-lane vector).
const NR: usize = 16;

/// One attention call: operands, their layouts, sizes and masks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TiledAttention<'a> {
    pub query: &'a [f32],
    pub query_layout: HeadLayout,
    pub key: &'a [f32],
    pub key_layout: HeadLayout,
    pub value: &'a [f32],
    pub value_layout: HeadLayout,
    pub batch: usize,
    pub heads: usize,
    pub len_q: usize,
    pub len_k: usize,
    /// Query/key width D.
    pub dim: usize,
    /// Value width Dv.
    pub value_dim: usize,
    /// Multiplier of Q·Kᵀ (applied to the queries, as PyTorch does).
    pub scale: f32,
    /// `[B · Lk]`, `true` = ignore this key.
    pub key_padding: Option<&'a [bool]>,
    /// Query i sees keys j <= i only (top-left aligned).
    pub causal: bool,
}

impl TiledAttention<'_> {
    /// The context, token-major: `[B, Lq, H · Dv]` (head h in columns h·Dv..(h+1)·Dv),
    /// which is what the output projection of multi-head attention reads.
    ///
    /// Panics if an operand is shorter than its layout says (an internal invariant: the
    /// callers build layouts from the tensors' own shapes).
    pub(crate) fn run(&self) -> Vec<f32> {
        self.run_tiles(true)
    }

    /// [`run`](Self::run); `pair_panels: false` keeps one panel per micro-kernel call
    /// even with 16-lane vectors (the 8-lane path's logic, for the tests on machines
    /// with AVX-512).
    fn run_tiles(&self, pair_panels: bool) -> Vec<f32> {
        let width = self.heads * self.value_dim;
        let mut out = vec![0.0f32; self.batch * self.len_q * width];
        if out.is_empty() {
            return out;
        }
        let packed = self.pack_keys_and_values();
        let arch = pulp::Arch::new();
        let len_q = self.len_q;
        out.par_chunks_mut(len_q * width)
            .enumerate()
            .for_each(|(b, sequence)| {
                sequence
                    .par_chunks_mut(BLOCK_Q * width)
                    .enumerate()
                    .for_each(|(block, rows)| {
                        arch.dispatch(QueryBlock {
                            attention: self,
                            packed: &packed,
                            pair_panels,
                            batch: b,
                            first: block * BLOCK_Q,
                            out: rows,
                        });
                    });
            });
        if packed.keys.len() + packed.values.len() <= KEEP_PACKING_BUFFERS {
            PACKING_BUFFERS.with(|cell| cell.set((packed.keys, packed.values)));
        }
        out
    }
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::reference::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
    use attnkit_kernels::rng::SplitMix64;

    fn random(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (rng.normal() * scale) as f32).collect()
    }

    struct Case {
        batch: usize,
        heads: usize,
        len_q: usize,
        len_k: usize,
        dim: usize,
        value_dim: usize,
        causal: bool,
        padding: Option<Vec<bool>>,
        /// Spread of the query entries: large values give logits far apart.
        spread: f64,
    }

    /// Runs the kernel on head-major operands (with and without paired panels) and
    /// compares with the f64 oracle of the kernels crate; returns the largest absolute
    /// error.
    fn head_major_error(case: &Case, seed: u64) -> f64 {
        let Case {
            batch,
            heads,
            len_q,
            len_k,
            dim,
            value_dim,
            causal,
            ..
        } = *case;
        let mut rng = SplitMix64::new(seed);
        let q = random(&mut rng, batch * heads * len_q * dim, case.spread);
        let k = random(&mut rng, batch * heads * len_k * dim, 1.0);
        let v = random(&mut rng, batch * heads * len_k * value_dim, 1.0);
        let scale = 1.0 / (dim as f64).sqrt();
        let attention = TiledAttention {
            query: &q,
            query_layout: HeadLayout::head_major(heads, len_q, dim),
            key: &k,
            key_layout: HeadLayout::head_major(heads, len_k, dim),
            value: &v,
            value_layout: HeadLayout::head_major(heads, len_k, value_dim),
            batch,
            heads,
            len_q,
            len_k,
            dim,
            value_dim,
            scale: scale as f32,
            key_padding: case.padding.as_deref(),
            causal,
        };
        let (paired, single) = (attention.run_tiles(true), attention.run_tiles(false));
        let f64s = |x: &[f32]| x.iter().map(|&y| y as f64).collect::<Vec<_>>();
        let want = scaled_dot_product_attention(
            &f64s(&q),
            &f64s(&k),
            &f64s(&v),
            SdpaShape {
                batch,
                heads,
                len_q,
                len_k,
                d_k: dim,
                d_v: value_dim,
            },
            SdpaOptions {
                scale: Some(scale),
                causal,
                key_padding_mask: case.padding.as_deref(),
            },
        )
        .unwrap()
        .output;
        let mut worst = 0.0f64;
        for got in [paired, single] {
            for b in 0..batch {
                for h in 0..heads {
                    for i in 0..len_q {
                        for c in 0..value_dim {
                            let w = want[((b * heads + h) * len_q + i) * value_dim + c];
                            let g = got[(b * len_q + i) * heads * value_dim + h * value_dim + c];
                            worst = worst.max((g as f64 - w).abs());
                        }
                    }
                }
            }
        }
        worst
    }

    /// Sizes that cross both block sizes and fill no register tile (D 5, Dv 7 or 40, Lq 70,
    /// Lk 300), with and without a causal mask, key padding that leaves one sequence
    /// with no visible key, Lq ≠ Lk (causal top-left) and logits far apart (queries with
    /// spread 30, so the running maximum jumps between key blocks). Tolerance: 1e-5
    /// absolute (f32 against f64; the context is an average of N(0, 1) values).
    #[test]
    fn matches_the_oracle_across_blocks_and_masks() {
        let padding: Vec<bool> = (0..2 * 300).map(|j| j % 5 == 2 || j >= 300).collect();
        for (n, (causal, padding, len_q, spread, value_dim)) in [
            (false, None, 70, 1.0, 7),
            (true, None, 70, 1.0, 7),
            (false, Some(padding.clone()), 70, 1.0, 7),
            (true, Some(padding.clone()), 70, 30.0, 7),
            (true, None, 300, 30.0, 7),
            (false, None, 1, 1.0, 7),
            // Three value panels: two side by side and one alone.
            (true, Some(padding.clone()), 70, 1.0, 40),
        ]
        .into_iter()
        .enumerate()
        {
            let case = Case {
                batch: 2,
                heads: 3,
                len_q,
                len_k: 300,
                dim: 5,
                value_dim,
                causal,
                padding,
                spread,
            };
            let err = head_major_error(&case, 40 + n as u64);
            assert!(err <= 1e-5, "case {n}: error {err}");
        }
    }

    /// Q, K and V as thirds of one token-major buffer `[B, L, 3E]` (strides and column
    /// offsets, as a fused projection's output would be) give the head-major answer
    /// exactly (same arithmetic, other addresses).
    #[test]
    fn token_major_layout_reads_the_same_elements() {
        let (batch, heads, len, dim) = (2, 4, 67, 16);
        let e = heads * dim;
        let mut rng = SplitMix64::new(9);
        let qkv = random(&mut rng, batch * len * 3 * e, 1.0);
        // The same operands, head-major.
        let split = |part: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(batch * heads * len * dim);
            for b in 0..batch {
                for h in 0..heads {
                    for l in 0..len {
                        let start = (b * len + l) * 3 * e + part * e + h * dim;
                        out.extend_from_slice(&qkv[start..start + dim]);
                    }
                }
            }
            out
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let base = |query: &[f32], ql, key: &[f32], kl, value: &[f32], vl| {
            TiledAttention {
                query,
                query_layout: ql,
                key,
                key_layout: kl,
                value,
                value_layout: vl,
                batch,
                heads,
                len_q: len,
                len_k: len,
                dim,
                value_dim: dim,
                scale: 0.25,
                key_padding: None,
                causal: true,
            }
            .run()
        };
        let hm = HeadLayout::head_major(heads, len, dim);
        let want = base(&q, hm, &k, hm, &v, hm);
        let got = base(
            &qkv,
            HeadLayout::token_major(len, 3 * e, 0, dim),
            &qkv,
            HeadLayout::token_major(len, 3 * e, e, dim),
            &qkv,
            HeadLayout::token_major(len, 3 * e, 2 * e, dim),
        );
        assert_eq!(got, want);
    }

    #[test]
    fn empty_inputs_give_empty_or_zero_outputs() {
        let q = vec![1.0f32; 2 * 3];
        let none: Vec<f32> = Vec::new();
        let out = TiledAttention {
            query: &q,
            query_layout: HeadLayout::head_major(1, 3, 2),
            key: &none,
            key_layout: HeadLayout::head_major(1, 0, 2),
            value: &none,
            value_layout: HeadLayout::head_major(1, 0, 2),
            batch: 1,
            heads: 1,
            len_q: 3,
            len_k: 0,
            dim: 2,
            value_dim: 2,
            scale: 1.0,
            key_padding: None,
            causal: false,
        }
        .run();
        assert_eq!(out, vec![0.0; 6], "no keys: zero context");
    }
}
