//! The fused CPU form of the Aaren layer, for inference.
//!
//! Burn's forms pay per operation: the iterative cell launches a handful of tensor
//! operations per token, the parallel scan ⌈log₂ L⌉ whole-sequence passes that each
//! read and write every element. On a CPU the recurrence itself is cheap — per token and
//! head, d multiply-adds and one exponential — so the fused form computes scores and
//! values with two matrix products, then runs the exact recurrence
//! ([`scan_head`]) once over each (sequence, head)'s contiguous scores and values, the
//! pairs spread over threads. Memory traffic is one read of each input and one write of
//! each output.

use attnkit_kernels::real::Real;
use burn::prelude::*;
use burn::tensor::{DType, Element};
use rayon::prelude::*;

use super::state::AarenState;
use crate::error::{AttnError, Result};

fn host<T: Element, const D: usize>(t: Tensor<D>) -> Result<Vec<T>> {
    t.try_into_vec_as::<T>()
        .map_err(|e| AttnError::Config(format!("reading a tensor back: {e:?}")))
}

/// Runs the recurrence for every (b, h) pair on the host in precision `T`, writing
/// each output over the value it came from (token t's output is computed after its
/// value is read), so the only buffer is the values' own.
///
/// - `s`: `[B, H, L]` scores (−inf where masked); `v`: `[B, H, L, d]`
/// - returns outputs `[B, H, L, d]` and the state after the last token
fn run<T: Real + Element + Send + Sync>(
    s: Tensor<3>,
    v: Tensor<4>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    let device = s.device();
    let [b, h, l] = s.dims();
    let d = v.dims()[3];
    let read = |e: burn::tensor::DataError| AttnError::Config(format!("fused Aaren scan: {e:?}"));
    let scores_data = s.into_data();
    let scores = scores_data.as_slice::<T>().map_err(read)?;
    let mut data = v.into_data();
    let values = data.as_mut_slice::<T>().map_err(read)?;
    let (m, c, a) = (
        host::<T, 2>(state.m)?,
        host::<T, 2>(state.c)?,
        host::<T, 3>(state.a)?,
    );
    let mut states: Vec<T> = Vec::with_capacity(b * h * (d + 2));
    for i in 0..b * h {
        states.push(m[i]);
        states.push(c[i]);
        states.extend_from_slice(&a[i * d..(i + 1) * d]);
    }
    if l > 0 && d > 0 {
        values
            .par_chunks_mut(l * d)
            .zip(states.par_chunks_mut(d + 2))
            .zip(scores.par_chunks(l))
            .for_each(|((v, st), s)| scan_head_in_place(s, v, st));
    }
    let (mut m, mut c, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for st in states.chunks_exact(d + 2) {
        m.push(st[0]);
        c.push(st[1]);
        a.extend_from_slice(&st[2..]);
    }
    let state = AarenState {
        m: Tensor::from_data(TensorData::new(m, [b, h]), &device),
        c: Tensor::from_data(TensorData::new(c, [b, h]), &device),
        a: Tensor::from_data(TensorData::new(a, [b, h, d]), &device),
    };
    Ok((Tensor::from_data(data, &device), state))
}

/// [`scan_head`] with the outputs written over the values, token by token.
fn scan_head_in_place<T: Real>(scores: &[T], values: &mut [T], state: &mut [T]) {
    let d = state.len() - 2;
    for (&s, v) in scores.iter().zip(values.chunks_exact_mut(d)) {
        attnkit_kernels::aaren::update(state, s, v);
        attnkit_kernels::aaren::output(state, v);
    }
}

/// Every prefix output of scores `s` `[B, H, L]` and values `v` `[B, H, L, d]`, masked
/// positions (`mask` `[B, L]`, `true` = padding) skipped, continuing from `state`.
pub(crate) fn scan_fused(
    s: Tensor<3>,
    v: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    if s.is_tracked() || v.is_tracked() {
        return Err(AttnError::Config(
            "Aaren mode `fused` computes on the host and carries no gradients; train with \
             `parallel` (or `iterative`) and switch to `fused` for inference"
                .into(),
        ));
    }
    let [b, h, l] = s.dims();
    let s = match mask {
        Some(mask) => {
            let m = mask.clone().unsqueeze_dim::<3>(1).expand([b, h, l]);
            s.mask_fill(m, f32::NEG_INFINITY)
        }
        None => s,
    };
    if s.dtype() == DType::F64 {
        run::<f64>(s, v, state)
    } else {
        run::<f32>(s, v, state)
    }
}

/// [`prefix_attention`](super::prefix_attention) by the fused CPU kernel: the same
/// outputs, computed by one sequential pass per (sequence, head) over threads.
/// Inference only (it refuses tensors that carry gradients).
///
/// - `scores`: `[B, H, L]`; `values`: `[B, H, L, D]`; `mask`: `[B, L]`, `true` = ignore
/// - returns: `[B, H, L, D]`
pub fn prefix_attention_fused(
    scores: Tensor<3>,
    values: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
) -> Result<Tensor<4>> {
    let [b, h, l] = scores.dims();
    let dims = values.dims();
    if dims[..3] != [b, h, l] {
        return Err(AttnError::Shape {
            what: "values".into(),
            expected: format!("[{b}, {h}, {l}, D]"),
            got: dims.to_vec(),
        });
    }
    if let Some(m) = mask {
        crate::error::check_shape("mask", &m.dims(), &[Some(b), Some(l)], &["B", "L"])?;
    }
    let state = AarenState::empty(b, h, dims[3], &scores.device());
    Ok(scan_fused(scores, values, mask, state)?.0)
}
