//! The online softmax of one key block for a panel of queries: masks, running maximum
//! and sum, rescaling of the accumulated output.

use attnkit_kernels::math::expf_fast;

use super::NR;

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
pub(super) fn online_softmax(
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
