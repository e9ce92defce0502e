//! The Aaren recurrence as one backend operation with its own backward pass: training
//! in O(L·d) per head instead of the ⌈log₂ L⌉ whole-tensor passes of the parallel scan.
//!
//! - forward: one pass per sequence over its tokens in the projection's token-major
//!   layout ([`sequence_forward`]), every head stepped together, sequences spread over
//!   threads; it keeps nothing but what autodiff already holds (scores, values,
//!   outputs);
//! - backward: the reverse scan of [`sequence_backward`], after recomputing each
//!   position's running maximum and denominator from the scores (2 numbers per token and
//!   head, cheaper to recompute than to keep).
//!
//! Masked tokens (score −inf) get exactly zero gradient. The starting state is a
//! constant of the operation (no gradient flows into it), and so is the state it
//! returns; [`AarenCell::forward_fused`](super::AarenCell::forward_fused) takes the
//! parallel scan when either must carry gradients. Registered for Burn's CPU backend
//! (Flex) and for autodiff over it; f32.

use attnkit_kernels::aaren::gradient::{sequence_backward, sequence_forward, sequence_stats};
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
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::state::AarenState;

/// The Aaren recurrence as a backend operation (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait AarenScanOps: Backend {
    /// Every prefix output, f32.
    ///
    /// - `scores` `[B, H, L]` (−inf: masked); `values` `[B, L, H, d]`
    /// - the starting state: `m`, `c` `[B, H]`, `a` `[B, H, d]`
    /// - returns the outputs `[B, L, H, d]` and the state after the last token
    ///   (`m`, `c`, `a`)
    fn aaren_scan(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        a: FloatTensor<Self>,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// The reverse scan: from the forward's inputs and outputs, the starting `m` and `c`,
    /// and ∂L/∂outputs `[B, L, H, d]`, returns ∂L/∂scores `[B, H, L]` and ∂L/∂values
    /// `[B, L, H, d]`.
    fn aaren_scan_backward(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        outputs: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn data(t: FlexTensor) -> TensorData {
    t.into_data()
}

fn f32s(d: &TensorData) -> &[f32] {
    d.as_slice::<f32>()
        .expect("Aaren scan: f32 tensors (checked by the caller)")
}

fn flex(v: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, dims.to_vec()))
}

/// `[B, L, H, d]` of the values.
fn value_dims(values: &FlexTensor) -> [usize; 4] {
    let s = values.shape();
    assert_eq!(s.num_dims(), 4, "Aaren scan: values of rank 4");
    [s[0], s[1], s[2], s[3]]
}

/// Starting states laid out per (sequence, head) as the kernels want: `[m, c, a..]`.
fn states(m: &[f32], c: &[f32], a: &[f32], d: usize) -> Vec<f32> {
    let mut st = Vec::with_capacity(m.len() * (d + 2));
    for i in 0..m.len() {
        st.push(m[i]);
        st.push(c[i]);
        st.extend_from_slice(&a[i * d..(i + 1) * d]);
    }
    st
}

impl AarenScanOps for Flex {
    fn aaren_scan(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        a: FloatTensor<Self>,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let [b, l, h, d] = value_dims(&values);
        let (s, v) = (data(scores), data(values));
        let (m, c, a) = (data(m), data(c), data(a));
        let mut st = states(f32s(&m), f32s(&c), f32s(&a), d);
        let mut out = vec![0.0f32; b * l * h * d];
        if l > 0 && d > 0 {
            let mut stats = vec![0.0f32; b * h * l * 2];
            out.par_chunks_mut(l * h * d)
                .zip(st.par_chunks_mut(h * (d + 2)))
                .zip(stats.par_chunks_mut(h * l * 2))
                .enumerate()
                .for_each(|(i, ((out, st), stats))| {
                    let scores = &f32s(&s)[i * h * l..(i + 1) * h * l];
                    let values = &f32s(&v)[i * l * h * d..(i + 1) * l * h * d];
                    sequence_forward(scores, values, st, out, stats, h);
                });
        }
        let (mut m, mut c, mut a) = (Vec::new(), Vec::new(), Vec::new());
        for row in st.chunks_exact(d + 2) {
            m.push(row[0]);
            c.push(row[1]);
            a.extend_from_slice(&row[2..]);
        }
        (
            flex(out, &[b, l, h, d]),
            flex(m, &[b, h]),
            flex(c, &[b, h]),
            flex(a, &[b, h, d]),
        )
    }

    fn aaren_scan_backward(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        outputs: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [b, l, h, d] = value_dims(&values);
        let (s, v, o, g) = (data(scores), data(values), data(outputs), data(grad));
        let (m, c) = (data(m), data(c));
        let mut gs = vec![0.0f32; b * h * l];
        let mut gv = vec![0.0f32; b * l * h * d];
        if l > 0 && d > 0 {
            gs.par_chunks_mut(h * l)
                .zip(gv.par_chunks_mut(l * h * d))
                .enumerate()
                .for_each(|(i, (gs, gv))| {
                    let seq = i * l * h * d..(i + 1) * l * h * d;
                    let scores = &f32s(&s)[i * h * l..(i + 1) * h * l];
                    let values = &f32s(&v)[seq.clone()];
                    // The forward's (m_t, c_t), recomputed from the scores.
                    let mut stats = vec![0.0f32; h * l * 2];
                    let start: Vec<f32> = (0..h)
                        .flat_map(|k| [f32s(&m)[i * h + k], f32s(&c)[i * h + k]])
                        .collect();
                    sequence_stats(scores, &start, &mut stats, h);
                    let mut carry = vec![0.0f32; h * (d + 2)];
                    sequence_backward(
                        scores,
                        values,
                        &f32s(&o)[seq.clone()],
                        &stats,
                        &f32s(&g)[seq],
                        gs,
                        gv,
                        &mut carry,
                        h,
                    );
                });
        }
        (flex(gs, &[b, h, l]), flex(gv, &[b, l, h, d]))
    }
}

impl<B: Backend + AarenScanOps, C: CheckpointStrategy> AarenScanOps for Autodiff<B, C> {
    fn aaren_scan(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        a: FloatTensor<Self>,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        #[derive(Debug)]
        struct ScanBackward;

        impl<B: Backend + AarenScanOps> Backward<B, 2> for ScanBackward {
            // Scores, values, outputs, the starting m and c.
            type State = (
                FloatTensor<B>,
                FloatTensor<B>,
                FloatTensor<B>,
                FloatTensor<B>,
                FloatTensor<B>,
            );

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (s, v, o, m, c) = ops.state;
                let [node_s, node_v] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (gs, gv) = B::aaren_scan_backward(s, v, o, m, c, grad);
                if let Some(node) = node_s {
                    grads.register::<B>(node.id, gs);
                }
                if let Some(node) = node_v {
                    grads.register::<B>(node.id, gv);
                }
            }
        }

        let nodes = [scores.node(), values.node()];
        let (s, v) = (scores.into_primitive(), values.into_primitive());
        let (m, c, a) = (m.into_primitive(), c.into_primitive(), a.into_primitive());
        let (out, m1, c1, a1) = match ScanBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, m1, c1, a1) =
                    B::aaren_scan(s.clone(), v.clone(), m.clone(), c.clone(), a);
                (prep.finish((s, v, out.clone(), m, c), out), m1, c1, a1)
            }
            OpsKind::UnTracked(prep) => {
                let (out, m1, c1, a1) = B::aaren_scan(s, v, m, c, a);
                (prep.finish(out), m1, c1, a1)
            }
        };
        (
            out,
            <Self as AutodiffBackend>::from_inner(m1),
            <Self as AutodiffBackend>::from_inner(c1),
            <Self as AutodiffBackend>::from_inner(a1),
        )
    }

    fn aaren_scan_backward(
        scores: FloatTensor<Self>,
        values: FloatTensor<Self>,
        outputs: FloatTensor<Self>,
        m: FloatTensor<Self>,
        c: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Gradients of gradients are not tracked: the reverse scan runs on the inner
        // backend and its results are constants.
        let (gs, gv) = B::aaren_scan_backward(
            scores.into_primitive(),
            values.into_primitive(),
            outputs.into_primitive(),
            m.into_primitive(),
            c.into_primitive(),
            grad.into_primitive(),
        );
        (
            <Self as AutodiffBackend>::from_inner(gs),
            <Self as AutodiffBackend>::from_inner(gv),
        )
    }
}

/// Every prefix output through the operation, f32: `scores` `[B, H, L]` (−inf where
/// masked), `values` `[B, L, H, d]`, starting from `state` → outputs `[B, L, H, d]` and
/// the state after the last token (a constant: it carries no gradient).
pub(crate) fn aaren_scan(
    scores: Tensor<3>,
    values: Tensor<4>,
    state: AarenState,
) -> (Tensor<4>, AarenState) {
    let (out, m, c, a) = <Dispatch as AarenScanOps>::aaren_scan(
        scores.into_dispatch(),
        values.into_dispatch(),
        state.m.into_dispatch(),
        state.c.into_dispatch(),
        state.a.into_dispatch(),
    );
    (
        Tensor::from_dispatch(out),
        AarenState {
            m: Tensor::from_dispatch(m),
            c: Tensor::from_dispatch(c),
            a: Tensor::from_dispatch(a),
        },
    )
}
