//! The float types the kernels run on.

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A float type the kernels are generic over: `f32` for devices, `f64` for oracles.
pub trait Real:
    Copy
    + PartialOrd
    + core::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// -inf: the identity of `max`, and the score of a masked key.
    const NEG_INFINITY: Self;
    /// e^self.
    fn exp(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Conversion from `f64` (rounds for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Conversion to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Whether this is NaN.
    fn is_nan(self) -> bool;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn exp(self) -> Self {
        crate::math::expf(self)
    }
    fn sqrt(self) -> Self {
        crate::math::sqrtf(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn exp(self) -> Self {
        crate::math::exp(self)
    }
    fn sqrt(self) -> Self {
        crate::math::sqrt(self)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Σ a_i·b_i over the common length, accumulated left to right (the order the kernels'
/// error analyses assume).
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = T::ZERO;
    for (x, y) in a.iter().zip(b) {
        acc += *x * *y;
    }
    acc
}
