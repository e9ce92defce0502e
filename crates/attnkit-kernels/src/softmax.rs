//! Row-wise softmax, written by hand and stable for any finite or -inf logits.
//!
//! softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m) with m = max_j x_j. Subtracting the
//! maximum keeps every exponent <= 0, so nothing overflows whatever the logits' size
//! (±1e4 and beyond), and the largest term is exactly e^0 = 1, so the sum is >= 1 and the
//! division is never catastrophic. A row whose logits are all -inf (every key masked)
//! has no maximum to subtract; it returns zeros instead of the 0/0 = NaN the plain
//! formula gives.

use crate::error::{KernelError, check_len};
use crate::real::Real;

/// Softmax of one row, in place. All -inf (or empty) rows become zeros; a NaN or +inf
/// logit gives NaN, as in the formula.
pub fn softmax_in_place<T: Real>(row: &mut [T]) {
    let mut max = T::NEG_INFINITY;
    for &x in row.iter() {
        // A NaN becomes the "maximum" so that it propagates to the whole row.
        if x > max || x.is_nan() {
            max = x;
        }
    }
    if max == T::NEG_INFINITY {
        row.iter_mut().for_each(|x| *x = T::ZERO);
        return;
    }
    let mut sum = T::ZERO;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in row.iter_mut() {
        *x /= sum;
    }
}

/// Softmax of each row of a row-major `[rows, cols]` matrix, in place.
///
/// # Errors
///
/// [`KernelError::Length`] if `data` does not hold `rows · cols` numbers.
pub fn softmax_rows<T: Real>(data: &mut [T], rows: usize, cols: usize) -> Result<(), KernelError> {
    check_len("data", data, rows * cols)?;
    if cols == 0 {
        return Ok(());
    }
    for row in data.chunks_exact_mut(cols) {
        softmax_in_place(row);
    }
    Ok(())
}

/// Softmax of one row where `masked[i]` removes logit `i` (its weight is 0). A row
/// with every entry masked gives zeros.
///
/// # Errors
///
/// [`KernelError::Length`] if `masked` and `row` differ in length.
pub fn masked_softmax_in_place<T: Real>(row: &mut [T], masked: &[bool]) -> Result<(), KernelError> {
    check_len("masked", masked, row.len())?;
    for (x, &m) in row.iter_mut().zip(masked) {
        if m {
            *x = T::NEG_INFINITY;
        }
    }
    softmax_in_place(row);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn hand_computed_row() {
        // e^0, e^1, e^2 over their sum 1 + 2.718281828 + 7.389056099 = 11.107337927.
        let mut row = [1.0f64, 2.0, 3.0];
        softmax_in_place(&mut row);
        let want = [
            0.090_030_573_170_380_46,
            0.244_728_471_054_797_6,
            0.665_240_955_774_821_9,
        ];
        for (g, w) in row.iter().zip(want) {
            assert!(close(*g, w, 1e-15), "{g} vs {w}");
        }
    }

    #[test]
    fn huge_logits_do_not_overflow() {
        // Differences of 1 at magnitude 1e4: the same answer as [0, 1].
        let mut row = [1.0e4f32, 1.0e4 + 1.0];
        softmax_in_place(&mut row);
        assert!(close(row[0] as f64, 0.268_941_421_369_995_1, 1e-7));
        assert!(close(row[1] as f64, 0.731_058_578_630_004_9, 1e-7));
        let mut row = [-1.0e4f32, 1.0e4];
        softmax_in_place(&mut row);
        assert_eq!(row, [0.0, 1.0]);
    }

    #[test]
    fn all_masked_row_is_zero_not_nan() {
        let mut row = [f32::NEG_INFINITY; 4];
        softmax_in_place(&mut row);
        assert_eq!(row, [0.0; 4]);
        let mut row = [3.0f64, 1.0, 2.0];
        masked_softmax_in_place(&mut row, &[true, true, true]).unwrap();
        assert_eq!(row, [0.0; 3]);
    }

    #[test]
    fn masked_entries_get_zero_weight() {
        let mut row = [5.0f64, 1.0, 1.0];
        masked_softmax_in_place(&mut row, &[true, false, false]).unwrap();
        assert_eq!(row, [0.0, 0.5, 0.5]);
    }

    #[test]
    fn nan_propagates() {
        let mut row = [1.0f32, f32::NAN, 0.0];
        softmax_in_place(&mut row);
        assert!(row.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn rows_are_independent_and_lengths_checked() {
        let mut m = [0.0f64, 0.0, 1.0, 1.0, f64::NEG_INFINITY, 0.0];
        softmax_rows(&mut m, 3, 2).unwrap();
        assert_eq!(m, [0.5, 0.5, 0.5, 0.5, 0.0, 1.0]);
        let err = softmax_rows(&mut m, 4, 2).unwrap_err();
        assert_eq!(
            err,
            KernelError::Length {
                what: "data",
                expected: 8,
                got: 6
            }
        );
    }
}
