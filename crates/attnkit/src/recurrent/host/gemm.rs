//! The small matrix products of a recurrent step, on the host.
//!
//! Each step multiplies the batch's hidden states `[R, H]` by a weight that does not
//! change during the sequence, so the weight is packed once into panels of [`NR`]
//! columns and every step packs only its left operand (`R·H` numbers, a small fraction
//! of the product's work). The micro-kernel keeps an [`MR`] × [`NR`] tile of sums in
//! registers: eight 8-lane vectors, enough independent sums to cover the latency of
//! the multiply-adds. (LLVM keeps to 256-bit vectors even where AVX-512 is available;
//! an 8-row tile of 16-lane sums then needs sixteen vectors and spills, measured 6×
//! slower.) The callers run it inside `pulp`'s dispatch so it is compiled with FMA
//! where the CPU has it.

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
        assert!(k > 0, "a product over an empty inner dimension");
        let mut panels = Self {
            k,
            n,
            data: vec![0.0; n.div_ceil(NR) * k * NR],
        };
        panels.fill(entry);
        panels
    }

    /// Repacks in place: the same sizes, new entries.
    #[inline(always)]
    pub(crate) fn fill(&mut self, entry: impl Fn(usize, usize) -> f32) {
        let (k, n) = (self.k, self.n);
        for (q, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, v) in row.iter_mut().enumerate().take(n - q * NR) {
                    *v = entry(p, q * NR + c);
                }
            }
        }
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

/// Packs the left operand A `[rows, k]` by blocks of MR rows (`rows` a multiple of MR):
/// block i holds, for each p, the MR entries `A[i·MR + r, p]`, read as `a(row, p)`.
#[inline(always)]
pub(crate) fn pack_rows(rows: usize, k: usize, a: impl Fn(usize, usize) -> f32, out: &mut [f32]) {
    debug_assert_eq!(rows % MR, 0);
    for (blk, block) in out[..rows * k].chunks_exact_mut(k * MR).enumerate() {
        for (p, step) in block.chunks_exact_mut(MR).enumerate() {
            for (r, v) in step.iter_mut().enumerate() {
                *v = a(blk * MR + r, p);
            }
        }
    }
}

/// What C starts from before A·B is added.
#[derive(Clone, Copy)]
pub(crate) enum Start<'a> {
    /// Zero.
    Zero,
    /// The same row in every row of C (a bias), `padded_n` long.
    Row(&'a [f32]),
    /// C's own values: C += A·B.
    Accumulate,
}

/// C = start + A·B, for A packed by [`pack_rows`] with `rows` rows; C is
/// `[rows, padded_n]` with row stride `ldc`.
#[inline(always)]
pub(crate) fn multiply(
    a_packed: &[f32],
    rows: usize,
    b: &Panels,
    start: Start<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    let k = b.k;
    for blk in 0..rows / MR {
        let a = &a_packed[blk * k * MR..(blk + 1) * k * MR];
        for q in 0..b.n.div_ceil(NR) {
            tile(a, b, q, blk, start, c, ldc);
        }
    }
}

/// `acc` += xs ⊗ y: one step of the inner dimension for a tile.
#[inline(always)]
fn step(acc: &mut [[f32; NR]; MR], xs: &[f32], y: &[f32]) {
    let xs: &[f32; MR] = xs.try_into().expect("MR values per step");
    let y: &[f32; NR] = y.try_into().expect("NR values per panel row");
    for (row, &x) in acc.iter_mut().zip(xs) {
        for (s, &v) in row.iter_mut().zip(y) {
            *s = x.mul_add(v, *s);
        }
    }
}

/// One register tile: rows `blk·MR ..` of C, columns of panel q.
#[inline(always)]
fn tile(a: &[f32], b: &Panels, q: usize, blk: usize, start: Start<'_>, c: &mut [f32], ldc: usize) {
    let k = b.k;
    let col = q * NR;
    let mut acc = [[0.0f32; NR]; MR];
    match start {
        Start::Zero => {}
        Start::Row(init) => {
            let first: &[f32; NR] = init[col..col + NR]
                .try_into()
                .expect("a whole panel of initial values");
            acc = [*first; MR];
        }
        Start::Accumulate => {
            for (r, row) in acc.iter_mut().enumerate() {
                let at = (blk * MR + r) * ldc + col;
                row.copy_from_slice(&c[at..at + NR]);
            }
        }
    }
    let panel = &b.data[q * k * NR..(q + 1) * k * NR];
    // Two steps at a time into two sets of sums: with one 16-lane vector per tile row
    // (AVX-512), one set is only four independent chains of multiply-adds, too few to
    // hide their latency; two sets give eight, and the same registers suffice with AVX2.
    let mut odd = [[0.0f32; NR]; MR];
    let pairs = a.chunks_exact(2 * MR).zip(panel.chunks_exact(2 * NR));
    for (xs, y) in pairs {
        let (x0, x1) = xs.split_at(MR);
        let (y0, y1) = y.split_at(NR);
        step(&mut acc, x0, y0);
        step(&mut odd, x1, y1);
    }
    if k % 2 == 1 {
        step(
            &mut acc,
            &a[(k - 1) * MR..k * MR],
            &panel[(k - 1) * NR..k * NR],
        );
    }
    for (row, other) in acc.iter_mut().zip(&odd) {
        for (s, &o) in row.iter_mut().zip(other) {
            *s += o;
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let at = (blk * MR + r) * ldc + col;
        c[at..at + NR].copy_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::rng::SplitMix64;

    fn check(rows: usize, k: usize, n: usize, rng: &mut SplitMix64) {
        let a: Vec<f32> = (0..rows * k).map(|_| rng.normal() as f32).collect();
        let m: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32).collect();
        let b = Panels::transposed(&m, n, k);
        let init: Vec<f32> = (0..b.padded_n()).map(|_| rng.normal() as f32).collect();
        let mut packed = vec![0.0; rows * k];
        pack_rows(rows, k, |i, p| a[i * k + p], &mut packed);
        let ldc = b.padded_n() + 3;
        for mode in 0..3 {
            let before: Vec<f32> = (0..rows * ldc).map(|_| rng.normal() as f32).collect();
            let mut c = before.clone();
            let start = match mode {
                0 => Start::Zero,
                1 => Start::Row(&init),
                _ => Start::Accumulate,
            };
            multiply(&packed, rows, &b, start, &mut c, ldc);
            for i in 0..rows {
                for j in 0..n {
                    let base = match mode {
                        0 => 0.0,
                        1 => init[j] as f64,
                        _ => before[i * ldc + j] as f64,
                    };
                    let want: f64 = (0..k)
                        .map(|p| a[i * k + p] as f64 * m[j * k + p] as f64)
                        .sum::<f64>()
                        + base;
                    let got = c[i * ldc + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{rows}x{k}x{n} start {mode} [{i},{j}]"
                    );
                }
            }
        }
    }

    /// Against the plain triple loop in f64, within 1e-5 (f32 sums of ≤ 64 products of
    /// normal numbers), sizes that are and are not multiples of the
    /// tile, each way of starting C; and the two ways of packing B agree.
    #[test]
    fn products_match_the_triple_loop() {
        let mut rng = SplitMix64::new(3);
        for (rows, k, n) in [(4, 1, 1), (8, 37, 16), (12, 5, 33), (4, 64, 256)] {
            check(rows, k, n, &mut rng);
            let m: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32).collect();
            let b = Panels::transposed(&m, n, k);
            let bt: Vec<f32> = (0..k * n).map(|i| m[(i % n) * k + i / n]).collect();
            assert_eq!(Panels::rows(&bt, k, n).data, b.data);
        }
    }
}
