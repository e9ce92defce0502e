//! Elementary functions without `std`.
//!
//! `core` has no `exp`, `ln` or `sqrt` on stable Rust, and this crate takes no
//! dependencies (not even `libm`), so the few functions the kernels need are written
//! here in `f64`. `f32` versions evaluate in `f64` and round once, which makes them
//! correctly rounded in all but rare halfway cases.
//!
//! Accuracy (checked against the platform `libm` in the tests below): `exp` and `ln`
//! within 2 ulp over their whole domain, `sqrt` within 1 ulp.

/// ln(2) split in a high part with trailing zero bits and a low correction, so that
/// `k * LN2_HI` is exact for |k| < 2^11 (Cody–Waite reduction, constants from fdlibm).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
const INV_LN2: f64 = core::f64::consts::LOG2_E;
/// Above this, `exp` overflows to +inf; below `EXP_UNDERFLOW` it is 0.
const EXP_OVERFLOW: f64 = 709.782_712_893_384;
const EXP_UNDERFLOW: f64 = -745.133_219_101_941_2;

/// 2^k for k in the normal exponent range [-1022, 1023].
fn pow2(k: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Rounds to the nearest integer, halves away from zero (no `round` in `core`).
fn round_to_i64(x: f64) -> i64 {
    if x >= 0.0 {
        (x + 0.5) as i64
    } else {
        (x - 0.5) as i64
    }
}

/// e^x in `f64`.
///
/// Returns +inf above ~709.78, 0 below ~-745.13, NaN for NaN; `exp(-inf) = 0`.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_OVERFLOW {
        return f64::INFINITY;
    }
    if x < EXP_UNDERFLOW {
        return 0.0;
    }
    // x = k·ln2 + r with |r| <= ln2/2.
    let k = round_to_i64(x * INV_LN2);
    let kf = k as f64;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    // Taylor series of e^r to degree 13 by Horner's rule: the truncation error is
    // below r^14/14! < 5e-18 for |r| <= ln2/2.
    let mut er = inv_factorial(13);
    for n in (0..13).rev() {
        er = er * r + inv_factorial(n);
    }
    scale_by_pow2(er, k)
}

/// 1/n! for n <= 13 (exact enough in f64: the values are rounded once).
fn inv_factorial(n: u32) -> f64 {
    const TABLE: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    TABLE[n as usize]
}

/// v·2^k, handling results that overflow the normal range or fall into subnormals.
fn scale_by_pow2(v: f64, k: i64) -> f64 {
    if k > 1023 {
        v * pow2(1023) * pow2(k - 1023)
    } else if k < -1022 {
        // Two steps so that no intermediate underflows before the final rounding.
        v * pow2(k + 1000) * pow2(-1000)
    } else {
        v * pow2(k)
    }
}

/// Natural logarithm in `f64`.
///
/// `ln(0) = -inf`, `ln(x<0) = NaN`, `ln(+inf) = +inf`.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let mut bits = x.to_bits();
    let mut e: i64 = 0;
    if (bits >> 52) == 0 {
        // Subnormal: scale into the normal range first.
        bits = (x * pow2(54)).to_bits();
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    // Mantissa with a zero exponent: m in [1, 2).
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2·atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, so s² <= 0.0295.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    let mut k = 25.0;
    while k >= 3.0 {
        series = (series + 1.0 / k) * s2;
        k -= 2.0;
    }
    let ln_m = 2.0 * s + 2.0 * s * series;
    let ef = e as f64;
    ef * LN2_HI + (ln_m + ef * LN2_LO)
}

/// Square root in `f64` (Newton's method from a bit-level first guess).
///
/// `sqrt(-0) = -0`, `sqrt(x<0) = NaN`.
pub fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 || x.is_infinite() {
        return x;
    }
    let (xs, unscale) = if x < f64::MIN_POSITIVE {
        (x * pow2(108), pow2(-54))
    } else {
        (x, 1.0)
    };
    // Halving the exponent bits gives a first guess within ~6%.
    let mut y = f64::from_bits((xs.to_bits() >> 1) + 0x1ff8_0000_0000_0000);
    for _ in 0..6 {
        y = 0.5 * (y + xs / y);
    }
    y * unscale
}

/// e^x in `f32`, evaluated in `f64` and rounded once.
pub fn expf(x: f32) -> f32 {
    exp(x as f64) as f32
}

/// e^x in `f32` by range reduction and a degree-6 polynomial (the Cephes `expf`
/// coefficients), written without branches or float-to-int conversions so that a loop
/// over a slice compiles to SIMD instructions — the exponentials of a softmax are most
/// of its time, and [`expf`] (evaluated in `f64`) does not vectorise.
///
/// Within 2 ulp of the correctly rounded value for x in [-87.3, 88.3] (tested against
/// the platform `libm`); 0 below, including -inf; +inf above 88.38; NaN for NaN.
#[inline(always)]
pub fn expf_fast(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 = C1 + C2 with C1 exact in few bits, so n·C1 is exact (Cody–Waite).
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const LO: f32 = -87.336_55;
    const HI: f32 = 88.376_26;
    // 1.5·2^23: adding it rounds to an integer, which then sits in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(LO, HI);
    let t = xc * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = (xc - n * C1) - n * C2;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from n's bits in t: (n + 127) << 23.
    let scale = f32::from_bits(
        t.to_bits()
            .wrapping_sub(SHIFTER.to_bits())
            .wrapping_add(127)
            << 23,
    );
    let e = y * scale;
    let e = if x < LO { 0.0 } else { e };
    if x > HI { f32::INFINITY } else { e }
}

/// Square root in `f32`, evaluated in `f64` and rounded once.
pub fn sqrtf(x: f32) -> f32 {
    sqrt(x as f64) as f32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// A deterministic sweep of `n` points over [lo, hi].
    fn sweep(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..=n).map(move |i| lo + (hi - lo) * (i as f64) / (n as f64))
    }

    #[test]
    fn exp_matches_libm_within_2_ulp() {
        for x in sweep(-708.0, 709.0, 200_000).chain(sweep(-1.0, 1.0, 20_000)) {
            let want = std::primitive::f64::exp(x);
            let got = exp(x);
            assert!(ulps(got, want) <= 2, "exp({x}) = {got}, libm {want}");
        }
    }

    #[test]
    fn expf_fast_within_2_ulp_of_libm() {
        let ulps32 = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut worst = 0;
        for x in sweep(-87.3, 88.3, 400_000).chain(sweep(-1.0, 1.0, 40_000)) {
            let x = x as f32;
            let want = std::primitive::f64::exp(x as f64) as f32;
            let got = expf_fast(x);
            worst = worst.max(ulps32(got, want));
            assert!(
                ulps32(got, want) <= 2,
                "expf_fast({x}) = {got}, libm {want}"
            );
        }
        assert!(worst >= 1, "a sweep this long hits rounding differences");
        assert_eq!(expf_fast(0.0), 1.0);
        assert_eq!(expf_fast(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf_fast(-100.0), 0.0);
        assert_eq!(expf_fast(89.0), f32::INFINITY);
        assert_eq!(expf_fast(f32::INFINITY), f32::INFINITY);
        assert!(expf_fast(f32::NAN).is_nan());
    }

    #[test]
    fn exp_edge_cases() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        // Subnormal results keep their relative accuracy to a few ulp of the subnormal grid.
        let want = std::primitive::f64::exp(-740.0);
        assert!(ulps(exp(-740.0), want) <= 2);
    }

    #[test]
    fn ln_matches_libm_within_2_ulp() {
        for x in sweep(1e-300, 1e300, 100_000)
            .chain(sweep(0.5, 2.0, 50_000))
            .chain(sweep(1e-12, 1e-3, 50_000))
        {
            let want = std::primitive::f64::ln(x);
            let got = ln(x);
            assert!(ulps(got, want) <= 2, "ln({x}) = {got}, libm {want}");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        let tiny = 5e-324;
        assert!(ulps(ln(tiny), std::primitive::f64::ln(tiny)) <= 2);
    }

    #[test]
    fn sqrt_matches_libm_within_1_ulp() {
        for x in sweep(0.0, 1e6, 100_000).chain(sweep(1e-310, 1e-300, 1000)) {
            let want = std::primitive::f64::sqrt(x);
            let got = sqrt(x);
            assert!(ulps(got, want) <= 1, "sqrt({x}) = {got}, libm {want}");
        }
        assert_eq!(sqrt(4.0), 2.0);
        assert!(sqrt(-1.0).is_nan());
        assert_eq!(sqrt(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn f32_versions_are_correctly_rounded_on_a_sweep() {
        let mut worst = 0;
        for i in 0..=100_000 {
            let x = -87.0 + 175.0 * (i as f32) / 100_000.0;
            let want = std::primitive::f32::exp(x);
            let got = expf(x);
            worst = worst.max((got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs());
        }
        assert!(worst <= 1, "expf worst {worst} ulp");
        assert_eq!(sqrtf(9.0), 3.0);
    }
}
