//! Keys and values packed once per call into the panels the micro-kernel reads, in
//! buffers each calling thread keeps for its next call.

use rayon::prelude::*;

use super::{NR, TiledAttention, round_up};

impl TiledAttention<'_> {
    /// Kᵀ per sequence and head (`D × Lk_p`) and V (`Lk_p × Dv_p`), zero-padded to the
    /// register tile, in parallel over sequences × heads. Done once, not per query
    /// block: O(L·E) memory, like the operands themselves.
    pub(super) fn pack_keys_and_values(&self) -> Packed {
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
    pub(super) static PACKING_BUFFERS: std::cell::Cell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// 16 M floats (64 MB) of packed keys and values at most are kept for the next call.
pub(super) const KEEP_PACKING_BUFFERS: usize = 1 << 24;

/// Keys and values laid out for the micro-kernel (see
/// [`TiledAttention::pack_keys_and_values`]).
pub(super) struct Packed {
    pub(super) keys: Vec<f32>,
    pub(super) values: Vec<f32>,
    pub(super) len_k_p: usize,
    pub(super) dv_p: usize,
}
