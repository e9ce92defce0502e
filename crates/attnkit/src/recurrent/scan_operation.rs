//! A whole recurrent layer as one backend operation, with backpropagation through time
//! written by hand.
//!
//! Composed from Burn's ops, a layer records a dozen small operations per step (the
//! recurrent product, gate slices, sigmoid, tanh, the state update, the padding
//! blend) and autodiff replays each backwards: thousands of nodes for one sequence and
//! most of a training step's time. As one operation (the host kernels of `recurrent/host/`):
//!
//! - forward: the input projections of every step and direction are one matrix product
//!   (done before, by the caller); then per step one packed product over the block of
//!   sequences with the gate nonlinearities fused, both directions on different threads;
//!   the gates, cell states and previous hidden states are kept;
//! - backward: one pass from the last step to the first, reusing the kept gates, one
//!   product per step for ∂L/∂h_{t−1} and one for its share of the weight gradient
//!   ∂L/∂W_hh = Σ_t δ_tᵀ·h_{t−1}, accumulated as it goes.
//!
//! Padding is as in the composed layer: a sequence's steps past its length do not
//! change its state, their outputs are zero, and their gradients are exactly zero.
//!
//! The operation is registered for Burn's CPU backend (Flex) and for autodiff over it;
//! it computes in f32, and [`Recurrent::forward`](super::Recurrent::forward) keeps the
//! composed form for other float types.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension,
};
use burn::prelude::*;

use super::RecurrentKind;
use super::host::{self, ScanShape};

/// What the operation needs besides tensors.
#[derive(Debug, Clone)]
pub struct RecurrentScanSpec {
    /// The recurrence.
    pub kind: RecurrentKind,
    /// Hidden width H.
    pub hidden: usize,
    /// Directions D, 1 or 2 (the second runs from each sequence's last real token).
    pub directions: usize,
    /// Each sequence's length (≤ L), B entries.
    pub lengths: Arc<[usize]>,
}

/// A recurrent layer as a backend operation (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait RecurrentScanOps: Backend {
    /// Every step of every direction of one layer, f32.
    ///
    /// - `x_proj`: `[B, L, D·G·H]`, W_ih·x + b_ih of each direction side by side
    /// - `w_hh`: `[D, G·H, H]`; `b_hh`: `[D, G·H]`
    /// - returns `[B, L + S, D·H]` (hidden states, zero at padding, then h_n and for LSTM
    ///   c_n), and when `keep` what the backward pass reads (`[B, D, L, kept]`)
    fn recurrent_scan(
        x_proj: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
        keep: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>);

    /// Backpropagation through time: from ∂L/∂output `[B, L + S, D·H]`, the kept
    /// numbers and `w_hh`, returns ∂L/∂x_proj `[B, L, D·G·H]`, ∂L/∂w_hh `[D, G·H, H]` and
    /// ∂L/∂b_hh `[D, G·H]`.
    fn recurrent_scan_backward(
        grad: FloatTensor<Self>,
        kept: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn shape_of(spec: &RecurrentScanSpec, x_proj: &FlexTensor) -> ScanShape {
    let dims = x_proj.shape();
    assert_eq!(dims.num_dims(), 3, "recurrent scan: x_proj of rank 3");
    ScanShape {
        kind: spec.kind,
        batch: dims[0],
        len: dims[1],
        dirs: spec.directions,
        hidden: spec.hidden,
    }
}

/// A primitive's f32 values, contiguous.
fn values(t: FlexTensor) -> burn::tensor::TensorData {
    t.into_data()
}

fn slice(data: &burn::tensor::TensorData) -> &[f32] {
    data.as_slice::<f32>()
        .expect("recurrent scan: f32 tensors (checked by the caller)")
}

impl RecurrentScanOps for Flex {
    fn recurrent_scan(
        x_proj: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
        keep: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let shape = shape_of(&spec, &x_proj);
        let (x, w, b) = (values(x_proj), values(w_hh), values(b_hh));
        let run = host::forward(&shape, slice(&x), slice(&w), slice(&b), &spec.lengths, keep);
        let (bs, l, d, h) = (shape.batch, shape.len, shape.dirs, shape.hidden);
        let out = FlexTensor::from_data(burn::tensor::TensorData::new(
            run.output,
            [bs, l + shape.final_rows(), d * h],
        ));
        let kept = keep.then(|| {
            FlexTensor::from_data(burn::tensor::TensorData::new(
                run.saved,
                [bs, d, l, shape.saved_len()],
            ))
        });
        (out, kept)
    }

    fn recurrent_scan_backward(
        grad: FloatTensor<Self>,
        kept: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let dims = kept.shape();
        let shape = ScanShape {
            kind: spec.kind,
            batch: dims[0],
            len: dims[2],
            dirs: spec.directions,
            hidden: spec.hidden,
        };
        let (bs, l, d, h, gw) = (
            shape.batch,
            shape.len,
            shape.dirs,
            shape.hidden,
            shape.gate_width(),
        );
        let (g, k, w) = (values(grad), values(kept), values(w_hh));
        let run = host::backward(&shape, slice(&g), slice(&k), slice(&w), &spec.lengths);
        if let Ok(buffer) = k.try_into_vec::<f32>() {
            host::return_kept(buffer);
        }
        let tensor = |v: Vec<f32>, dims: &[usize]| {
            FlexTensor::from_data(burn::tensor::TensorData::new(v, dims.to_vec()))
        };
        (
            tensor(run.grad_x_proj, &[bs, l, d * gw]),
            tensor(run.grad_w_hh, &[d, gw, h]),
            tensor(run.grad_b_hh, &[d, gw]),
        )
    }
}

impl<B: Backend + RecurrentScanOps, C: CheckpointStrategy> RecurrentScanOps for Autodiff<B, C> {
    fn recurrent_scan(
        x_proj: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
        _keep: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        #[derive(Debug)]
        struct ScanBackward;

        impl<B: Backend + RecurrentScanOps> Backward<B, 3> for ScanBackward {
            // What the inner backend kept, the recurrent weight, the sizes.
            type State = (FloatTensor<B>, FloatTensor<B>, RecurrentScanSpec);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (kept, w_hh, spec) = ops.state;
                let (gx, gw, gb) = B::recurrent_scan_backward(grad, kept, w_hh, spec);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, gx);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, gw);
                }
                if let Some(node) = node_b {
                    grads.register::<B>(node.id, gb);
                }
            }
        }

        let nodes = [x_proj.node(), w_hh.node(), b_hh.node()];
        let (x, w, b) = (
            x_proj.into_primitive(),
            w_hh.into_primitive(),
            b_hh.into_primitive(),
        );
        let out = match ScanBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, kept) = B::recurrent_scan(x, w.clone(), b, spec.clone(), true);
                let kept = kept.expect("the inner backend keeps what it was asked to");
                prep.finish((kept, w, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::recurrent_scan(x, w, b, spec, false).0),
        };
        (out, None)
    }

    fn recurrent_scan_backward(
        grad: FloatTensor<Self>,
        kept: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        spec: RecurrentScanSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Gradients of gradients are not tracked: the backward pass runs on the inner
        // backend and its results are constants.
        let (gx, gw, gb) = B::recurrent_scan_backward(
            grad.into_primitive(),
            kept.into_primitive(),
            w_hh.into_primitive(),
            spec,
        );
        (
            <Self as AutodiffBackend>::from_inner(gx),
            <Self as AutodiffBackend>::from_inner(gw),
            <Self as AutodiffBackend>::from_inner(gb),
        )
    }
}

/// One layer's scan through the operation: `x_proj` `[B, L, D·G·H]`, `w_hh`
/// `[D, G·H, H]`, `b_hh` `[D, G·H]` (f32) → `[B, L + S, D·H]` (see the module docs).
pub(crate) fn recurrent_scan(
    x_proj: Tensor<3>,
    w_hh: Tensor<3>,
    b_hh: Tensor<2>,
    spec: RecurrentScanSpec,
) -> Tensor<3> {
    let (out, _) = <Dispatch as RecurrentScanOps>::recurrent_scan(
        x_proj.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        spec,
        false,
    );
    Tensor::from_dispatch(out)
}
