//! Typed shorthands for the opset-17 operators the exporters use, and the two
//! subgraphs several of them share: a linear layer and a masked softmax.
//!
//! Opset 17 details that matter here: `ReduceMax`/`ReduceMean` take `axes` as an
//! attribute, `ReduceSum`, `Unsqueeze`, `Squeeze` and `Slice` take them as inputs.

use attnkit::store::StoredTensor;

use crate::builder::{Attr, GraphBuilder};

/// The most negative finite f32: a stand-in for a running max of −∞ inside
/// exponents, so that exp(−∞ − m) is exactly 0 and exp(−∞ − (−∞)) never occurs.
pub const MOST_NEGATIVE: f32 = f32::MIN;

impl GraphBuilder {
    /// `a · b` (numpy matmul broadcasting).
    pub fn matmul(&mut self, a: &str, b: &str) -> String {
        self.node("MatMul", &[a, b], vec![])
    }

    /// Elementwise binary op (`Add`, `Sub`, `Mul`, `Div`, `Max`, `Where`'s friends).
    pub fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, &[a, b], vec![])
    }

    /// `exp(x)`.
    pub fn exp(&mut self, x: &str) -> String {
        self.node("Exp", &[x], vec![])
    }

    /// Permutes dimensions.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![("perm", Attr::Ints(perm.to_vec()))])
    }

    /// Reshape (0 copies the input's dimension, −1 infers one).
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.i64_tensor("shape", shape);
        self.node("Reshape", &[x, &s], vec![])
    }

    /// Inserts size-1 dimensions at `axes`.
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.i64_tensor("axes", axes);
        self.node("Unsqueeze", &[x, &a], vec![])
    }

    /// Max over `axes`, keeping them as size 1.
    pub fn reduce_max_keep(&mut self, x: &str, axes: &[i64]) -> String {
        self.node(
            "ReduceMax",
            &[x],
            vec![
                ("axes", Attr::Ints(axes.to_vec())),
                ("keepdims", Attr::Int(1)),
            ],
        )
    }

    /// Sum over `axes`, keeping them as size 1.
    pub fn reduce_sum_keep(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.i64_tensor("axes", axes);
        self.node("ReduceSum", &[x, &a], vec![("keepdims", Attr::Int(1))])
    }

    /// `cond ? a : b`.
    pub fn where_(&mut self, cond: &str, a: &str, b: &str) -> String {
        self.node("Where", &[cond, a, b], vec![])
    }

    /// A 0/1 float mask as booleans (`> 0.5`, so 1 = ignore).
    pub fn mask_to_bool(&mut self, mask: &str) -> String {
        let half = self.f32_scalar("half", 0.5);
        self.binary("Greater", mask, &half)
    }

    /// Dimension `axis` of `x`'s shape as a 1-element int64 tensor.
    pub fn dim_of(&mut self, x: &str, axis: i64) -> String {
        let shape = self.node("Shape", &[x], vec![]);
        let idx = self.i64_tensor("index", &[axis]);
        self.node("Gather", &[&shape, &idx], vec![("axis", Attr::Int(0))])
    }

    /// Concatenation along `axis`.
    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.node("Concat", xs, vec![("axis", Attr::Int(axis))])
    }

    /// A float tensor of shape `shape` (an int64 1-D value) filled with `value`.
    pub fn filled(&mut self, shape: &str, value: f32) -> String {
        let v = self.f32_scalar("fill", value);
        self.node("Expand", &[&v, shape], vec![])
    }

    /// `x[..., start:end, ...]` along one axis; negative ends count from the back.
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let s = self.i64_tensor("starts", &[start]);
        let e = self.i64_tensor("ends", &[end]);
        let a = self.i64_tensor("axes", &[axis]);
        self.node("Slice", &[x, &s, &e, &a], vec![])
    }

    /// Pads `before` copies of `value` in front of `axis` (rank `rank`).
    pub fn pad_front(
        &mut self,
        x: &str,
        rank: usize,
        axis: usize,
        before: i64,
        value: f32,
    ) -> String {
        let mut pads = vec![0i64; 2 * rank];
        pads[axis] = before;
        let p = self.i64_tensor("pads", &pads);
        // A rank-0 fill value: tract insists on it.
        let v = self.f32_scalar("pad_value", value);
        self.node(
            "Pad",
            &[x, &p, &v],
            vec![("mode", Attr::Str("constant".into()))],
        )
    }

    /// `x · Wᵀ + b` for a PyTorch `nn.Linear` weight `[out, in]` (stored transposed,
    /// named `{name}.T`) and optional bias `[out]`.
    pub fn linear(
        &mut self,
        x: &str,
        name: &str,
        weight: &StoredTensor,
        bias: Option<(&str, &StoredTensor)>,
    ) -> String {
        let t = transposed(weight);
        let w = self.f32_tensor(
            &format!("{name}.T"),
            &[weight.shape[1], weight.shape[0]],
            &t,
        );
        let y = self.matmul(x, &w);
        match bias {
            Some((bname, b)) => {
                let b = self.f32_tensor(bname, &b.shape, &b.data);
                self.binary("Add", &y, &b)
            }
            None => y,
        }
    }

    /// Softmax of `scores` along `axis` where `ignore` (booleans, broadcast to the
    /// scores) is true for entries that must get weight 0. A row with every entry
    /// ignored gives zeros, not NaN: its max is clamped to [`MOST_NEGATIVE`] so every
    /// exponent is exp(−∞) = 0, and its sum (0) is raised to 1. Any row with one
    /// entry left has sum ≥ 1 (its max contributes exp(0)), so the clamp changes
    /// nothing else.
    pub fn masked_softmax(&mut self, scores: &str, ignore: Option<&str>, axis: i64) -> String {
        let masked = match ignore {
            Some(ignore) => {
                let ninf = self.f32_scalar("neg_inf", f32::NEG_INFINITY);
                self.where_(ignore, &ninf, scores)
            }
            None => scores.to_string(),
        };
        let mut max = self.reduce_max_keep(&masked, &[axis]);
        if ignore.is_some() {
            let floor = self.f32_scalar("most_negative", MOST_NEGATIVE);
            max = self.binary("Max", &max, &floor);
        }
        let shifted = self.binary("Sub", &masked, &max);
        let e = self.exp(&shifted);
        let mut sum = self.reduce_sum_keep(&e, &[axis]);
        if ignore.is_some() {
            let one = self.f32_scalar("one", 1.0);
            sum = self.binary("Max", &sum, &one);
        }
        self.binary("Div", &e, &sum)
    }
}

/// A `[rows, cols]` matrix as `[cols, rows]`, row-major.
pub fn transposed(w: &StoredTensor) -> Vec<f32> {
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w.data[r * cols + c];
        }
    }
    t
}
