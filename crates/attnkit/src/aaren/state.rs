//! The recurrent state of an Aaren layer: (m, c, a) per batch row and head.

use burn::prelude::*;

use super::scan::ScanElements;
use crate::error::{Result, check_shape};

/// The state (m, c, a) after some prefix of tokens, for every batch row and head.
///
/// Its size is B·H·(d_head + 2) numbers whatever the number of tokens seen: this is the
/// whole memory of the recurrence. The empty prefix is (−inf, 0, 0).
#[derive(Debug, Clone)]
pub struct AarenState {
    /// Running maximum of the scores, `[B, H]` (−inf before the first token).
    pub m: Tensor<2>,
    /// Denominator Σ e^(s_i − m), `[B, H]`.
    pub c: Tensor<2>,
    /// Numerator Σ e^(s_i − m)·v_i, `[B, H, D]`.
    pub a: Tensor<3>,
}

impl AarenState {
    /// The state of the empty prefix.
    pub fn empty(batch: usize, heads: usize, d_head: usize, device: &Device) -> Self {
        Self {
            m: Tensor::full([batch, heads], f32::NEG_INFINITY, device),
            c: Tensor::zeros([batch, heads], device),
            a: Tensor::zeros([batch, heads, d_head], device),
        }
    }

    /// `[B, H, D]`.
    pub fn dims(&self) -> [usize; 3] {
        self.a.dims()
    }

    /// Numbers held: B·H·(D + 2).
    pub fn num_elements(&self) -> usize {
        let [b, h, d] = self.dims();
        b * h * (d + 2)
    }

    /// The output o = a / c, `[B, H, D]` (zeros while no token has been seen).
    pub fn output(&self) -> Tensor<3> {
        self.a.clone() / self.c.clone().clamp_min(1e-30).unsqueeze_dim(2)
    }

    /// One recurrent step (the cell of the paper's Fig. 2):
    /// m' = max(m, s), c' = c·e^(m − m') + e^(s − m'), a' = a·e^(m − m') + v·e^(s − m').
    ///
    /// - `scores`: `[B, H]`
    /// - `values`: `[B, H, D]`
    /// - `mask`: `[B]`, `true` = this token is padding (the state does not change)
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`](crate::AttnError::Shape) if `scores`, `values` or `mask` does not match the state's `[B,
    /// H, D]`.
    pub fn step(
        self,
        scores: Tensor<2>,
        values: Tensor<3>,
        mask: Option<&Tensor<1, Bool>>,
    ) -> Result<Self> {
        let [b, h, d] = self.dims();
        check_shape("scores", &scores.dims(), &[Some(b), Some(h)], &["B", "H"])?;
        check_shape(
            "values",
            &values.dims(),
            &[Some(b), Some(h), Some(d)],
            &["B", "H", "D"],
        )?;
        let mask = match mask {
            Some(mask) => {
                check_shape("mask", &mask.dims(), &[Some(b)], &["B"])?;
                Some(mask.clone().reshape([b, 1]))
            }
            None => None,
        };
        let leaf = ScanElements::leaves(
            scores.unsqueeze_dim(2),
            values.unsqueeze_dim(2),
            mask.as_ref(),
        )?;
        Ok(Self::from_elements(self.into_elements().combine(leaf)))
    }

    /// The state as a one-position scan element.
    pub(crate) fn into_elements(self) -> ScanElements {
        ScanElements {
            m: self.m.unsqueeze_dim(2),
            w: self.c.unsqueeze_dim(2),
            u: self.a.unsqueeze_dim(2),
        }
    }

    /// The last position of `elements` as a state.
    pub(crate) fn from_elements(elements: ScanElements) -> Self {
        let l = elements.len();
        let last = elements.narrow(l - 1, 1);
        Self {
            m: last.m.squeeze_dim(2),
            c: last.w.squeeze_dim(2),
            a: last.u.squeeze_dim(2),
        }
    }

    /// The state repeated along `len` positions, to combine with a chunk's prefixes.
    pub(crate) fn broadcast(&self, len: usize) -> ScanElements {
        let [b, h, d] = self.dims();
        ScanElements {
            m: self.m.clone().unsqueeze_dim::<3>(2).expand([b, h, len]),
            w: self.c.clone().unsqueeze_dim::<3>(2).expand([b, h, len]),
            u: self.a.clone().unsqueeze_dim::<4>(2).expand([b, h, len, d]),
        }
    }

    /// Cuts the state from the autodiff graph (between training chunks).
    pub fn detach(self) -> Self {
        Self {
            m: self.m.detach(),
            c: self.c.detach(),
            a: self.a.detach(),
        }
    }
}
