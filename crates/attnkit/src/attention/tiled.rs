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
//! and chosen at run time, with no `unsafe` here.

use attnkit_kernels::math::expf_fast;
use rayon::prelude::*;

/// Queries per task.
pub(crate) const BLOCK_Q: usize = 64;
const _: () = assert!(BLOCK_Q % NR == 0 && BLOCK_K % NR == 0);
/// Keys per block of the online softmax.
pub(crate) const BLOCK_K: usize = 256;
/// Width of every panel and of the micro-kernel's register tile (two 8-lane vectors, or
/// one 16-lane vector).
const NR: usize = 16;

/// Where the `[B, H, L, D]` elements of an operand lie in a flat slice: element
/// (b, h, l, c) is at `offset + b·batch + h·head + l·row + c` (the last axis is
/// contiguous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLayout {
    pub offset: usize,
    pub batch: usize,
    pub head: usize,
    pub row: usize,
}

impl HeadLayout {
    /// Token-major rows `[B, L, width]` with the heads side by side from column
    /// `column`, each `dim` wide (a projection's output, or one third of a fused
    /// Q/K/V projection's).
    pub(crate) fn token_major(len: usize, width: usize, column: usize, dim: usize) -> Self {
        HeadLayout {
            offset: column,
            batch: len * width,
            head: dim,
            row: width,
        }
    }

    /// Contiguous `[B, H, L, dim]`.
    pub(crate) fn head_major(heads: usize, len: usize, dim: usize) -> Self {
        HeadLayout {
            offset: 0,
            batch: heads * len * dim,
            head: len * dim,
            row: dim,
        }
    }

    #[inline(always)]
    fn start(&self, b: usize, h: usize, l: usize) -> usize {
        self.offset + b * self.batch + h * self.head + l * self.row
    }
}

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

    /// Kᵀ per sequence and head (`D × Lk_p`) and V (`Lk_p × Dv_p`), zero-padded to the
    /// register tile, in parallel over sequences × heads. Done once, not per query
    /// block: O(L·E) memory, like the operands themselves.
    fn pack_keys_and_values(&self) -> Packed {
        let (d, dv) = (self.dim, self.value_dim);
        let len_k_p = round_up(self.len_k.max(1), NR);
        let dv_p = round_up(dv.max(1), NR);
        let pairs = self.batch * self.heads;
        // Reuse the calling thread's buffers from the previous call: fresh multi-megabyte
        // buffers cost a page fault per 4 KB every call.
        let (mut keys, mut values) = PACKING_BUFFERS.with(|cell| cell.take());
        keys.clear();
        keys.resize(pairs * d * len_k_p, 0.0);
        values.clear();
        values.resize(pairs * len_k_p * dv_p, 0.0);
        if d > 0 {
            // Kᵀ in panels of NR keys: panel t holds keys t·NR.. as D rows of NR floats.
            keys.par_chunks_mut(d * len_k_p)
                .enumerate()
                .for_each(|(pair, dst)| {
                    let (b, h) = (pair / self.heads, pair % self.heads);
                    for (t, panel) in dst.chunks_exact_mut(d * NR).enumerate() {
                        let keys_here = NR.min(self.len_k.saturating_sub(t * NR));
                        let starts: [usize; NR] = std::array::from_fn(|jj| {
                            self.key_layout
                                .start(b, h, t * NR + jj.min(keys_here.max(1) - 1))
                        });
                        for (c, row) in panel.chunks_exact_mut(NR).enumerate() {
                            for (x, start) in row.iter_mut().zip(&starts).take(keys_here) {
                                *x = self.key[start + c];
                            }
                        }
                    }
                });
        }
        // V in panels of NR columns: panel t holds columns t·NR.. as Lk_p rows of NR.
        values
            .par_chunks_mut(len_k_p * dv_p)
            .enumerate()
            .for_each(|(pair, dst)| {
                let (b, h) = (pair / self.heads, pair % self.heads);
                for (t, strip) in dst.chunks_exact_mut(len_k_p * NR).enumerate() {
                    let (c0, c1) = (t * NR, dv.min((t + 1) * NR));
                    for (j, row) in strip.chunks_exact_mut(NR).take(self.len_k).enumerate() {
                        let start = self.value_layout.start(b, h, j);
                        row[..c1 - c0].copy_from_slice(&self.value[start + c0..start + c1]);
                    }
                }
            });
        Packed {
            keys,
            values,
            len_k_p,
            dv_p,
        }
    }
}

thread_local! {
    /// Packed buffers kept by each thread that runs [`TiledAttention::run`] between
    /// calls, up to [`KEEP_PACKING_BUFFERS`] floats (beyond, they are freed after the call).
    static PACKING_BUFFERS: std::cell::Cell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// 16 M floats (64 MB) of packed keys and values at most are kept for the next call.
const KEEP_PACKING_BUFFERS: usize = 1 << 24;

/// Keys and values laid out for the micro-kernel (see
/// [`TiledAttention::pack_keys_and_values`]).
struct Packed {
    keys: Vec<f32>,
    values: Vec<f32>,
    len_k_p: usize,
    dv_p: usize,
}

/// One task: queries `first..first + out.len() / (H·Dv)` of sequence `batch`.
struct QueryBlock<'a, 'b> {
    attention: &'a TiledAttention<'b>,
    packed: &'a Packed,
    pair_panels: bool,
    batch: usize,
    first: usize,
    out: &'a mut [f32],
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl pulp::WithSimd for QueryBlock<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        // Four tile rows: eight 8-lane accumulators (AVX2), or with 16-lane vectors
        // (AVX-512, 32 registers) two panels side by side for eight. With eight rows of
        // one panel the compiler spills or serialises the sums.
        if S::F32_LANES >= 16 && self.pair_panels {
            self.run::<4, true>();
        } else {
            self.run::<4, false>();
        }
    }
}

impl QueryBlock<'_, '_> {
    /// The task with a register tile of `MR` rows (see [`tile`]), two panels wide when
    /// `PAIR` ([`tile_pair`]).
    #[inline(always)]
    fn run<const MR: usize, const PAIR: bool>(self) {
        let QueryBlock {
            attention: a,
            packed,
            batch: b,
            pair_panels: _,
            first,
            out,
        } = self;
        let (d, dv) = (a.dim, a.value_dim);
        let width = a.heads * dv;
        let rows = out.len() / width;
        let rows_p = round_up(rows, NR);
        let (dv_p, len_k_p) = (packed.dv_p, packed.len_k_p);
        let block_k_p = round_up(BLOCK_K.min(a.len_k).max(1), NR);
        // With a causal mask the last query here sees keys up to first + rows - 1.
        let len_k = if a.causal {
            a.len_k.min(first + rows)
        } else {
            a.len_k
        };
        let padding = a.key_padding.map(|p| &p[b * a.len_k..(b + 1) * a.len_k]);

        // Queries (scaled) in panels of NR: panel g holds queries g·NR.. as D rows of NR.
        // Weights in the same shape: panel g holds, per key of the block, its NR queries'
        // scores, then weights. Output row-major. Queries added to fill a panel stay
        // zero and are never written out.
        let mut q = vec![0.0f32; rows_p * d];
        let mut p = vec![0.0f32; rows_p * block_k_p];
        let mut o = vec![0.0f32; rows_p * dv_p];
        let mut max = vec![f32::NEG_INFINITY; rows_p];
        let mut sum = vec![0.0f32; rows_p];

        for h in 0..a.heads {
            let pair = b * a.heads + h;
            let kt = &packed.keys[pair * d * len_k_p..(pair + 1) * d * len_k_p];
            let v = &packed.values[pair * len_k_p * dv_p..(pair + 1) * len_k_p * dv_p];
            for r in 0..rows {
                let start = a.query_layout.start(b, h, first + r);
                let panel = &mut q[(r / NR) * d * NR..(r / NR + 1) * d * NR];
                for (c, &x) in a.query[start..start + d].iter().enumerate() {
                    panel[c * NR + r % NR] = x * a.scale;
                }
            }
            o.fill(0.0);
            max.fill(f32::NEG_INFINITY);
            sum.fill(0.0);

            for j0 in (0..len_k).step_by(BLOCK_K) {
                let n = BLOCK_K.min(len_k - j0);
                let n_p = round_up(n, NR);
                let panels = rows_p / NR;
                let q_panel = |g: usize| &q[g * d * NR..(g + 1) * d * NR];
                // Sᵀ = K·Qᵀ in tiles of MR keys × NR queries (× 2 panels when `PAIR`): each
                // tile is MR rows of a weights panel.
                let mut g = 0;
                while g < panels {
                    let pair = PAIR && g + 1 < panels;
                    for r0 in (0..n_p).step_by(MR) {
                        let key = j0 + r0;
                        let k_panel = &kt[(key / NR) * d * NR..(key / NR + 1) * d * NR];
                        let zero = [[0.0f32; NR]; MR];
                        let (acc0, acc1) = if pair {
                            tile_pair(k_panel, key % NR, q_panel(g), q_panel(g + 1), zero, zero)
                        } else {
                            (tile(k_panel, key % NR, q_panel(g), zero), zero)
                        };
                        for (gg, acc) in [(g, acc0), (g + 1, acc1)]
                            .into_iter()
                            .take(1 + pair as usize)
                        {
                            let rows = &mut p[(gg * n_p + r0) * NR..(gg * n_p + r0 + MR) * NR];
                            for (dst, src) in rows.chunks_exact_mut(NR).zip(&acc) {
                                dst.copy_from_slice(src);
                            }
                        }
                    }
                    g += 1 + pair as usize;
                }
                for g in 0..panels {
                    let p_panel = &mut p[g * n_p * NR..(g + 1) * n_p * NR];
                    online_softmax(
                        p_panel,
                        n,
                        padding.map(|pad| &pad[j0..j0 + n]),
                        a.causal.then_some((j0, first + g * NR)),
                        &mut max[g * NR..(g + 1) * NR],
                        &mut sum[g * NR..(g + 1) * NR],
                        &mut o[g * NR * dv_p..(g + 1) * NR * dv_p],
                        dv_p,
                    );
                    // O += P·V in tiles of MR queries × NR value columns (× 2 strips when
                    // `PAIR`).
                    let p_panel = &p_panel[..n_p * NR];
                    let strips = dv_p / NR;
                    let v_panel = |t: usize| &v[t * len_k_p * NR + j0 * NR..][..n_p * NR];
                    for r0 in (0..NR).step_by(MR) {
                        let o_rows = &mut o[(g * NR + r0) * dv_p..(g * NR + r0 + MR) * dv_p];
                        let mut t = 0;
                        while t < strips {
                            let pair = PAIR && t + 1 < strips;
                            let load = |t: usize, o_rows: &[f32]| {
                                let mut acc = [[0.0f32; NR]; MR];
                                for (acc_row, o_row) in
                                    acc.iter_mut().zip(o_rows.chunks_exact(dv_p))
                                {
                                    acc_row.copy_from_slice(&o_row[t * NR..(t + 1) * NR]);
                                }
                                acc
                            };
                            let (acc0, acc1) = if pair {
                                let (a0, a1) = (load(t, o_rows), load(t + 1, o_rows));
                                tile_pair(p_panel, r0, v_panel(t), v_panel(t + 1), a0, a1)
                            } else {
                                (
                                    tile(p_panel, r0, v_panel(t), load(t, o_rows)),
                                    [[0.0; NR]; MR],
                                )
                            };
                            for (tt, acc) in [(t, acc0), (t + 1, acc1)]
                                .into_iter()
                                .take(1 + pair as usize)
                            {
                                for (acc_row, o_row) in
                                    acc.iter().zip(o_rows.chunks_exact_mut(dv_p))
                                {
                                    o_row[tt * NR..(tt + 1) * NR].copy_from_slice(acc_row);
                                }
                            }
                            t += 1 + pair as usize;
                        }
                    }
                }
            }

            for r in 0..rows {
                let dst = &mut out[r * width + h * dv..r * width + (h + 1) * dv];
                let src = &o[r * dv_p..r * dv_p + dv];
                if sum[r] > 0.0 {
                    let inv = 1.0 / sum[r];
                    for (x, &y) in dst.iter_mut().zip(src) {
                        *x = y * inv;
                    }
                } else {
                    // Every key masked: a zero context.
                    dst.fill(0.0);
                }
            }
        }
    }
}

/// The online softmax over one block of keys for [`NR`] queries, vectorised across the
/// queries (no horizontal reductions).
///
/// - `panel`: `n_p × NR` scores (key-major, one row of NR queries per key) in, weights
///   e^(s − m) out; keys `n..` are tile padding
/// - `padding`: the block's `n` keys, `true` = masked
/// - `causal`: (first key of the block, first query of the panel): key j is masked for
///   query i when j > i
/// - `max`, `sum`: the queries' running maximum and sum, updated
/// - `out`: the queries' accumulated outputs (`NR × dv_p`), rescaled when the maximum grows
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn online_softmax(
    panel: &mut [f32],
    n: usize,
    padding: Option<&[bool]>,
    causal: Option<(usize, usize)>,
    max: &mut [f32],
    sum: &mut [f32],
    out: &mut [f32],
    dv_p: usize,
) {
    let mut block_max = [f32::NEG_INFINITY; NR];
    for (jj, row) in panel.chunks_exact_mut(NR).enumerate() {
        let masked = jj >= n || padding.is_some_and(|pad| pad[jj]);
        if masked {
            row.fill(f32::NEG_INFINITY);
            continue;
        }
        if let Some((first_key, first_query)) = causal {
            let key = first_key + jj;
            for (t, x) in row.iter_mut().enumerate() {
                if key > first_query + t {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        for (m, &x) in block_max.iter_mut().zip(&*row) {
            *m = m.max(x);
        }
    }
    // A query with nothing visible yet keeps max -inf; shifting by 0 instead makes its
    // weights e^-inf = 0 rather than NaN.
    let mut shift = [0.0f32; NR];
    let mut factor = [0.0f32; NR];
    for t in 0..NR {
        let new_max = max[t].max(block_max[t]);
        shift[t] = if new_max == f32::NEG_INFINITY {
            0.0
        } else {
            new_max
        };
        // e^(m_old − m): 0 when m_old = -inf (nothing accumulated yet), 1 when unchanged.
        factor[t] = expf_fast(max[t] - shift[t]);
        max[t] = new_max;
    }
    let mut block_sum = [0.0f32; NR];
    for row in panel.chunks_exact_mut(NR) {
        for ((x, &m), s) in row.iter_mut().zip(&shift).zip(block_sum.iter_mut()) {
            *x = expf_fast(*x - m);
            *s += *x;
        }
    }
    for t in 0..NR {
        sum[t] = sum[t] * factor[t] + block_sum[t];
    }
    for (row, &f) in out.chunks_exact_mut(dv_p).zip(&factor) {
        if f != 1.0 {
            for x in row {
                *x *= f;
            }
        }
    }
}

/// The micro-kernel: `acc` (MR × NR) += Aᵀ-slice · B over k steps, where step p takes
/// MR scalars `a[p·NR + offset..][..MR]` (broadcast) and one row `b[p·NR..][..NR]`.
///
/// Both operands are panels with NR floats per step, read front to back; the MR × NR
/// sums stay in registers (8 vectors: 4 × 2 with AVX2, 8 × 1 with AVX-512).
#[inline(always)]
fn tile<const MR: usize>(
    a: &[f32],
    offset: usize,
    b: &[f32],
    mut acc: [[f32; NR]; MR],
) -> [[f32; NR]; MR] {
    for (a_step, b_row) in a.chunks_exact(NR).zip(b.chunks_exact(NR)) {
        let xs: &[f32; MR] = a_step[offset..offset + MR]
            .try_into()
            .expect("MR divides NR");
        let ys: &[f32; NR] = b_row.try_into().expect("a whole panel row");
        for (acc_row, &x) in acc.iter_mut().zip(xs) {
            for (s, &y) in acc_row.iter_mut().zip(ys) {
                *s = x.mul_add(y, *s);
            }
        }
    }
    acc
}

/// [`tile`] against two B panels at once: twice the accumulators for the same
/// broadcasts (for 16-lane vectors, where one panel row is one register).
#[inline(always)]
fn tile_pair<const MR: usize>(
    a: &[f32],
    offset: usize,
    b0: &[f32],
    b1: &[f32],
    mut acc0: [[f32; NR]; MR],
    mut acc1: [[f32; NR]; MR],
) -> ([[f32; NR]; MR], [[f32; NR]; MR]) {
    let steps = a
        .chunks_exact(NR)
        .zip(b0.chunks_exact(NR))
        .zip(b1.chunks_exact(NR));
    for ((a_step, b0_row), b1_row) in steps {
        let xs: &[f32; MR] = a_step[offset..offset + MR]
            .try_into()
            .expect("MR divides NR");
        let y0: &[f32; NR] = b0_row.try_into().expect("a whole panel row");
        let y1: &[f32; NR] = b1_row.try_into().expect("a whole panel row");
        for ((row0, row1), &x) in acc0.iter_mut().zip(acc1.iter_mut()).zip(xs) {
            for (s, &y) in row0.iter_mut().zip(y0) {
                *s = x.mul_add(y, *s);
            }
            for (s, &y) in row1.iter_mut().zip(y1) {
                *s = x.mul_add(y, *s);
            }
        }
    }
    (acc0, acc1)
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
