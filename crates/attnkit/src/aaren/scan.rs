//! The associative scan of Aaren on Burn tensors: all prefix outputs o_1..o_N in
//! ⌈log₂ N⌉ parallel steps, differentiable.
//!
//! An element is a triple (m, w, u) per batch row, head and position: the maximum
//! score m, the rescaled denominator w = Σ e^(s_i − m) and numerator u = Σ e^(s_i − m) v_i.
//! A token is the leaf (s, 1, v); a masked token is the identity (−inf, 0, 0);
//!
//! ```text
//! (m_A, w_A, u_A) ⊕ (m_B, w_B, u_B) = (M, w_A·e^(m_A−M) + w_B·e^(m_B−M), u_A·e^(m_A−M) + u_B·e^(m_B−M)),
//! M = max(m_A, m_B)
//! ```
//!
//! is associative, so the inclusive scan x_1, x_1⊕x_2, …, x_1⊕…⊕x_N gives every prefix,
//! and o_t = u_t / w_t. The scan is Hillis–Steele: at step j every position t ≥ 2^j
//! combines with position t − 2^j, a whole-sequence tensor operation per step.
//!
//! Two details keep it exact and finite:
//!
//! - **The maxima carry no gradient.** A leaf is (s̄, e^(s − s̄), v·e^(s − s̄)) with
//!   s̄ = s detached: numerically (s, 1, v), but the gradient reaches s through w and u.
//!   Every M is then a constant, which is exact, because o = u/w does not depend on the
//!   reference point M; it also keeps `max` (whose derivative is a step) out of the graph.
//! - **Empty sides.** M is clamped to `f32::MIN` before subtracting, so an empty side's
//!   factor is e^(−inf − M) = 0 and two empty sides give (M, 0, 0) instead of
//!   e^(−inf + inf) = NaN. For any non-empty prefix the largest term is exactly
//!   e^0 = 1, so w ≥ 1 and the division never meets a tiny denominator; empty prefixes
//!   (w = 0, u = 0) give o = 0.

use burn::prelude::*;

use crate::error::{AttnError, Result, check_shape};

/// A batch of scan elements: `m`, `w` `[B, H, L]` and `u` `[B, H, L, D]`.
#[derive(Debug, Clone)]
pub struct ScanElements {
    /// Running maxima, `[B, H, L]` (never tracked by autodiff).
    pub m: Tensor<3>,
    /// Rescaled denominators, `[B, H, L]`.
    pub w: Tensor<3>,
    /// Rescaled numerators, `[B, H, L, D]`.
    pub u: Tensor<4>,
}

impl ScanElements {
    /// The leaves of a sequence: token t becomes (s_t, 1, v_t), or the identity where
    /// `mask` is `true`.
    ///
    /// - `scores`: `[B, H, L]`
    /// - `values`: `[B, H, L, D]`
    /// - `mask`: `[B, L]`, `true` = ignore this token
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn leaves(
        scores: Tensor<3>,
        values: Tensor<4>,
        mask: Option<&Tensor<2, Bool>>,
    ) -> Result<Self> {
        let mask = check_inputs(&scores, &values, mask)?;
        let fixed = scores.clone().detach();
        let mut w = (scores - fixed.clone()).exp();
        let mut m = fixed;
        if let Some(mask) = mask {
            m = m.mask_fill(mask.clone(), f32::NEG_INFINITY);
            w = w.mask_fill(mask, 0.0);
        }
        let u = values * w.clone().unsqueeze_dim(3);
        Ok(Self { m, w, u })
    }

    /// Positions L.
    pub fn len(&self) -> usize {
        self.m.dims()[2]
    }

    /// Whether there are no positions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `self ⊕ later`, position by position (equal shapes).
    pub fn combine(self, later: Self) -> Self {
        let m = self.m.clone().max_pair(later.m.clone());
        let reference = m.clone().clamp_min(f32::MIN);
        let alpha = (self.m - reference.clone()).exp();
        let beta = (later.m - reference).exp();
        let w = self.w * alpha.clone() + later.w * beta.clone();
        let u = self.u * alpha.unsqueeze_dim(3) + later.u * beta.unsqueeze_dim(3);
        Self { m, w, u }
    }

    /// Positions `start..start + len`.
    pub fn narrow(&self, start: usize, len: usize) -> Self {
        Self {
            m: self.m.clone().narrow(2, start, len),
            w: self.w.clone().narrow(2, start, len),
            u: self.u.clone().narrow(2, start, len),
        }
    }

    /// Concatenates along the positions.
    pub fn cat(parts: Vec<Self>) -> Self {
        let (mut ms, mut ws, mut us) = (Vec::new(), Vec::new(), Vec::new());
        for p in parts {
            ms.push(p.m);
            ws.push(p.w);
            us.push(p.u);
        }
        Self {
            m: Tensor::cat(ms, 2),
            w: Tensor::cat(ws, 2),
            u: Tensor::cat(us, 2),
        }
    }

    /// The outputs o = u / w, zeros where no token has been seen.
    ///
    /// - returns: `[B, H, L, D]`
    pub fn outputs(&self) -> Tensor<4> {
        // w ≥ 1 for every non-empty prefix; the clamp only turns 0/0 into 0/tiny = 0.
        self.u.clone() / self.w.clone().clamp_min(1e-30).unsqueeze_dim(3)
    }
}

/// Checks scores `[B, H, L]`, values `[B, H, L, D]` and mask `[B, L]`; returns the mask
/// expanded over the heads.
fn check_inputs(
    scores: &Tensor<3>,
    values: &Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
) -> Result<Option<Tensor<3, Bool>>> {
    let [b, h, l] = scores.dims();
    check_shape(
        "values",
        &values.dims(),
        &[Some(b), Some(h), Some(l), None],
        &["B", "H", "L", "D"],
    )?;
    mask.map(|mask| {
        check_shape(
            "key_padding_mask",
            &mask.dims(),
            &[Some(b), Some(l)],
            &["B", "L"],
        )?;
        Ok(mask.clone().unsqueeze_dim::<3>(1).expand([b, h, l]))
    })
    .transpose()
}

/// The inclusive prefix scan (Hillis–Steele): position t becomes x_1 ⊕ … ⊕ x_t.
///
/// ⌈log₂ L⌉ steps of O(L) work each; every step is a few whole-tensor operations, so
/// autodiff records O(log L) nodes.
pub fn inclusive_scan(elements: ScanElements) -> ScanElements {
    let l = elements.len();
    let mut x = elements;
    let mut offset = 1;
    while offset < l {
        let earlier = x.narrow(0, l - offset);
        let later = x.narrow(offset, l - offset);
        let head = x.narrow(0, offset);
        x = ScanElements::cat(vec![head, earlier.combine(later)]);
        offset *= 2;
    }
    x
}

/// All prefix outputs of softmax attention with one query per head, by the scan.
///
/// - `scores`: `[B, H, L]`, s_t = q·k_t (already scaled)
/// - `values`: `[B, H, L, D]`
/// - `mask`: `[B, L]`, `true` = ignore this token
/// - returns: `[B, H, L, D]`, o_t = Σ_{i≤t, unmasked} softmax(s)_i v_i (zeros before
///   the first unmasked token)
///
/// # Errors
///
/// [`AttnError::Shape`] if an input's shape is not the one above.
pub fn prefix_attention(
    scores: Tensor<3>,
    values: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
) -> Result<Tensor<4>> {
    Ok(inclusive_scan(ScanElements::leaves(scores, values, mask)?).outputs())
}

/// The non-iterative form for the last output only: o_N = Σ e^(s_i − M) v_i / Σ e^(s_i − M)
/// with M = max s_i, over the unmasked tokens.
///
/// - `scores`: `[B, H, L]`; `values`: `[B, H, L, D]`; `mask`: `[B, L]`
/// - returns: `[B, H, D]` (zeros for a row with every token masked)
///
/// # Errors
///
/// [`AttnError::Shape`] if an input's shape is not the one above.
/// [`AttnError::Config`] if the sequence is empty (L = 0).
pub fn last_output(
    scores: Tensor<3>,
    values: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
) -> Result<Tensor<3>> {
    if scores.dims()[2] == 0 {
        return Err(AttnError::Config(
            "the sequence must have at least one token, got L = 0".into(),
        ));
    }
    let mask = check_inputs(&scores, &values, mask)?;
    let weights = crate::attention::masked_softmax(scores, mask, 2);
    Ok((values * weights.unsqueeze_dim(3))
        .sum_dim(2)
        .squeeze_dim(2))
}
