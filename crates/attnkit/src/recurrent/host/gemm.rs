//! The small matrix products of a recurrent step, on the host.
//!
//! Each step multiplies the batch's hidden states `[R, H]` by a weight that does not
//! change during the sequence, so the weight is packed once into panels of [`NR`]
//! columns and every step packs only its left operand (`R·H` numbers, a small fraction
//! of the product's work). The micro-kernel keeps an [`MR`] × [`NR`] tile of sums in
//! registers (eight 8-lane vectors with AVX2); the callers run it inside `pulp`'s
//! dispatch so it is compiled with FMA where the CPU has it.

/// Rows of the register tile.
pub(crate) const MR: usize = 4;
/// Columns of the register tile (two 8-lane vectors).
pub(crate) const NR: usize = 16;

/// The right operand B `[k, n]` of a product, packed: panel q holds, for each of the k
/// rows, the entries `B[p, q·NR .. q·NR + NR]`, zero past column n.
#[derive(Debug, Clone)]
pub(crate) struct Panels {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs B `[k, n]` given entry by entry.
    pub(crate) fn new(k: usize, n: usize, entry: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for q in 0..panels {
            for p in 0..k {
                for c in 0..NR.min(n - q * NR) {
                    data[(q * k + p) * NR + c] = entry(p, q * NR + c);
                }
            }
        }
        Self { k, n, data }
    }

    /// B = Mᵀ for a row-major M `[n, k]`: the hidden-to-gates weight `[G·H, H]` used as
    /// `h·Wᵀ`.
    pub(crate) fn transposed(m: &[f32], n: usize, k: usize) -> Self {
        Self::new(k, n, |p, j| m[j * k + p])
    }

    /// B itself, row-major `[k, n]`: the same weight used as `δ·W`.
    pub(crate) fn rows(b: &[f32], k: usize, n: usize) -> Self {
        Self::new(k, n, |p, j| b[p * n + j])
    }

    /// Columns rounded up to whole panels: the row stride of a product's output.
    pub(crate) fn padded_n(&self) -> usize {
        self.n.div_ceil(NR) * NR
    }
}

/// Packs the left operand A `[rows, k]` (row stride `lda`, `rows` a multiple of [`MR`])
/// by blocks of MR rows: block i holds, for each p, the MR entries `A[i·MR + r, p]`.
#[inline(always)]
pub(crate) fn pack_rows(a: &[f32], lda: usize, rows: usize, k: usize, out: &mut [f32]) {
    debug_assert_eq!(rows % MR, 0);
    for (blk, block) in out[..rows * k].chunks_exact_mut(k * MR).enumerate() {
        for (p, step) in block.chunks_exact_mut(MR).enumerate() {
            for (r, v) in step.iter_mut().enumerate() {
                *v = a[(blk * MR + r) * lda + p];
            }
        }
    }
}

/// C = A·B (+ `init` added to every row, `padded_n` long), for A packed by
/// [`pack_rows`] with `rows` rows; C is `[rows, padded_n]` with row stride `ldc`.
#[inline(always)]
pub(crate) fn multiply(
    a_packed: &[f32],
    rows: usize,
    b: &Panels,
    init: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    let k = b.k;
    if k == 0 {
        for row in c.chunks_mut(ldc).take(rows) {
            match init {
                Some(init) => row[..b.padded_n()].copy_from_slice(&init[..b.padded_n()]),
                None => row[..b.padded_n()].fill(0.0),
            }
        }
        return;
    }
    for (blk, a) in a_packed[..rows * k].chunks_exact(k * MR).enumerate() {
        for (q, panel) in b.data.chunks_exact(k * NR).enumerate() {
            let mut acc = [[0.0f32; NR]; MR];
            if let Some(init) = init {
                let start: &[f32; NR] = init[q * NR..q * NR + NR]
                    .try_into()
                    .expect("a whole panel of initial values");
                acc = [*start; MR];
            }
            for (xs, y) in a.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
                let xs: &[f32; MR] = xs.try_into().expect("MR values per step");
                let y: &[f32; NR] = y.try_into().expect("NR values per panel row");
                for (row, &x) in acc.iter_mut().zip(xs) {
                    for (s, &v) in row.iter_mut().zip(y) {
                        *s = x.mul_add(v, *s);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let at = (blk * MR + r) * ldc + q * NR;
                c[at..at + NR].copy_from_slice(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::rng::SplitMix64;

    /// Against the plain triple loop in f64, within 1e-5 (f32 sums of ≤ 37 products of
    /// numbers below ~3), for sizes that are and are not multiples of the tile, with
    /// and without initial values.
    #[test]
    fn products_match_the_triple_loop() {
        let mut rng = SplitMix64::new(3);
        for (rows, k, n) in [(4, 1, 1), (8, 37, 16), (12, 5, 33), (4, 64, 256)] {
            let a: Vec<f32> = (0..rows * k).map(|_| rng.normal() as f32).collect();
            let m: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32).collect();
            let b = Panels::transposed(&m, n, k);
            let init: Vec<f32> = (0..b.padded_n()).map(|_| rng.normal() as f32).collect();
            let mut packed = vec![0.0; rows * k];
            pack_rows(&a, k, rows, k, &mut packed);
            let ldc = b.padded_n() + 3;
            for with_init in [false, true] {
                let mut c = vec![f32::NAN; rows * ldc];
                multiply(
                    &packed,
                    rows,
                    &b,
                    with_init.then_some(&init[..]),
                    &mut c,
                    ldc,
                );
                for i in 0..rows {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| a[i * k + p] as f64 * m[j * k + p] as f64)
                            .sum::<f64>()
                            + if with_init { init[j] as f64 } else { 0.0 };
                        let got = c[i * ldc + j] as f64;
                        assert!((got - want).abs() < 1e-5, "{rows}x{k}x{n} [{i},{j}]");
                    }
                }
            }
            // B given by rows is the same product.
            let bt: Vec<f32> = (0..k * n).map(|i| m[(i % n) * k + i / n]).collect();
            assert_eq!(Panels::rows(&bt, k, n).data, b.data);
        }
    }
}
