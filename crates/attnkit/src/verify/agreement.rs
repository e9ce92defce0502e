//! How far a computed result is from its reference, as one pair of numbers.

use crate::error::{AttnError, Result};

/// How far a result is from its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// max |got − want|.
    pub max_abs: f64,
    /// max |got − want| / max |want|: the error relative to the output's scale.
    pub max_rel: f64,
    /// Whether every value is finite.
    pub finite: bool,
    /// Number of values compared.
    pub count: usize,
}

/// The error for buffers of different lengths: `what` has `got` values where the
/// reference has `expected`.
fn length_error(what: &str, expected: usize, got: usize) -> AttnError {
    AttnError::Shape {
        what: what.to_string(),
        expected: format!("[{expected}] (one per reference value)"),
        got: vec![got],
    }
}

impl Agreement {
    /// Compares `got` with `want` element-wise.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `got` and `want` have different lengths.
    pub fn measure(got: &[f32], want: &[f64]) -> Result<Self> {
        if got.len() != want.len() {
            return Err(length_error("compared values", want.len(), got.len()));
        }
        let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
        let max_abs = got
            .iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max);
        Ok(Self {
            max_abs,
            max_rel: if scale > 0.0 {
                max_abs / scale
            } else {
                max_abs
            },
            finite: got.iter().all(|g| g.is_finite()),
            count: got.len(),
        })
    }

    /// Compares `got` with `want` element-wise, with `max_rel` = max |got − want| / `scale`
    /// element by element (`scale` > 0: the size of what each value was computed from).
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `got`, `want` and `scale` do not all have one length.
    pub fn measure_scaled(got: &[f32], want: &[f64], scale: &[f64]) -> Result<Self> {
        if got.len() != want.len() {
            return Err(length_error("compared values", want.len(), got.len()));
        }
        if scale.len() != want.len() {
            return Err(length_error("scales", want.len(), scale.len()));
        }
        let mut max_abs = 0.0f64;
        let mut max_rel = 0.0f64;
        for ((g, w), s) in got.iter().zip(want).zip(scale) {
            let err = (*g as f64 - w).abs();
            max_abs = max_abs.max(err);
            max_rel = max_rel.max(if *s > 0.0 { err / s } else { err });
        }
        Ok(Self {
            max_abs,
            max_rel,
            finite: got.iter().all(|g| g.is_finite()),
            count: got.len(),
        })
    }

    /// The worse of two agreements.
    pub fn worst(self, other: Self) -> Self {
        Self {
            max_abs: self.max_abs.max(other.max_abs),
            max_rel: self.max_rel.max(other.max_rel),
            finite: self.finite && other.finite,
            count: self.count + other.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_absolute_and_relative_error() {
        let a = Agreement::measure(&[1.0, 2.5], &[1.0, 2.0]).unwrap();
        assert_eq!(a.max_abs, 0.5);
        assert_eq!(a.max_rel, 0.25);
        assert!(a.finite);
        assert!(!Agreement::measure(&[f32::NAN], &[0.0]).unwrap().finite);
        let s = Agreement::measure_scaled(&[1.0, 3.0], &[1.5, 2.0], &[1.0, 4.0]).unwrap();
        assert_eq!((s.max_abs, s.max_rel), (1.0, 0.5));
    }

    #[test]
    fn different_lengths_are_an_error_naming_both() {
        let e = Agreement::measure(&[1.0], &[1.0, 2.0])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "compared values: expected shape [2] (one per reference value), got [1]"
        );
        let e = Agreement::measure_scaled(&[1.0], &[1.0], &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("scales: expected shape [1]"), "{e}");
    }
}
