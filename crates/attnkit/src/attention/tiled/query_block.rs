//! One task of the kernel: a block of queries of one sequence, every head, through the
//! key blocks (QK, online softmax, PV on the micro-kernel), written out as O / l.

use super::micro_kernel::{tile, tile_pair};
use super::online_softmax::online_softmax;
use super::packing::Packed;
use super::{BLOCK_K, NR, TiledAttention, round_up};

/// One task: queries `first..first + out.len() / (H·Dv)` of sequence `batch`.
pub(super) struct QueryBlock<'a, 'b> {
    pub(super) attention: &'a TiledAttention<'b>,
    pub(super) packed: &'a Packed,
    pub(super) pair_panels: bool,
    pub(super) batch: usize,
    pub(super) first: usize,
    pub(super) out: &'a mut [f32],
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
