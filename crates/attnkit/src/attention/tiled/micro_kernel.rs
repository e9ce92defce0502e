//! The register-tiled micro-kernel both products (Q·Kᵀ and P·V) run on.

use super::NR;

/// The micro-kernel: `acc` (MR × NR) += Aᵀ-slice · B over k steps, where step p takes
/// MR scalars `a[p·NR + offset..][..MR]` (broadcast) and one row `b[p·NR..][..NR]`.
///
/// Both operands are panels with NR floats per step, read front to back; the MR × NR
/// sums stay in registers (8 vectors: 4 × 2 with AVX2, 8 × 1 with AVX-512).
#[inline(always)]
pub(super) fn tile<const MR: usize>(
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
pub(super) fn tile_pair<const MR: usize>(
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
