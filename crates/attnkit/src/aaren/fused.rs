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

/// How the values lie in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueLayout {
    /// `[B, H, L, d]`: each (sequence, head) contiguous; threads over B·H pairs.
    HeadMajor,
    /// `[B, L, H, d]`: the projection's own layout (no transpose, no copy); each sequence
    /// contiguous, its heads stepped together token by token; threads over B.
    TokenMajor,
}

/// Runs the recurrence for every (b, h) pair on the host in precision `T`, writing
/// each output over the value it came from (token t's output is computed after its
/// value is read), so the only buffer is the values' own — and when the caller hands
/// over a contiguous tensor it alone holds, that is Burn's buffer itself, not a copy.
///
/// - `s`: `[B, H, L]` scores (−inf where masked); `v`: `[B, H, L, d]` or `[B, L, H, d]`
///   as `layout` says
/// - returns outputs in `v`'s layout and the state after the last token
fn run<T: Real + Element + Send + Sync>(
    s: Tensor<3>,
    v: Tensor<4>,
    layout: ValueLayout,
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
    // One run per (b, h): m, c, then the d accumulators.
    let mut states: Vec<T> = Vec::with_capacity(b * h * (d + 2));
    for i in 0..b * h {
        states.push(m[i]);
        states.push(c[i]);
        states.extend_from_slice(&a[i * d..(i + 1) * d]);
    }
    if l > 0 && d > 0 {
        match layout {
            ValueLayout::HeadMajor => values
                .par_chunks_mut(l * d)
                .zip(states.par_chunks_mut(d + 2))
                .zip(scores.par_chunks(l))
                .for_each(|((v, st), s)| scan_head_in_place(s, v, st)),
            ValueLayout::TokenMajor => values
                .par_chunks_mut(l * h * d)
                .zip(states.par_chunks_mut(h * (d + 2)))
                .zip(scores.par_chunks(h * l))
                .for_each(|((v, st), s)| scan_sequence_in_place(s, v, st, h)),
        }
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

/// One sequence in token-major layout: `scores` `[H, L]`, `values` `[L, H, d]` (outputs
/// written over them), `states` H runs of `d + 2`. Token t of every head is one
/// contiguous row, so the pass reads and writes memory strictly in order.
fn scan_sequence_in_place<T: Real>(scores: &[T], values: &mut [T], states: &mut [T], h: usize) {
    let d = states.len() / h - 2;
    let l = scores.len() / h;
    for (t, row) in values.chunks_exact_mut(h * d).enumerate() {
        for ((v, state), head) in row
            .chunks_exact_mut(d)
            .zip(states.chunks_exact_mut(d + 2))
            .zip(0..h)
        {
            attnkit_kernels::aaren::update(state, scores[head * l + t], v);
            attnkit_kernels::aaren::output(state, v);
        }
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
    scan_fused_in(s, v, ValueLayout::HeadMajor, mask, state)
}

/// [`scan_fused`] with the values `[B, L, H, d]` as the value projection wrote them;
/// outputs `[B, H, L, d]` (a transposed view of the buffer the values came in). Below
/// one sequence per thread it transposes and runs head-major, for the threads.
pub(crate) fn scan_fused_token_major(
    s: Tensor<3>,
    v: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    if s.dims()[0] < rayon::current_num_threads() {
        return scan_fused(s, v.swap_dims(1, 2), mask, state);
    }
    let (o, state) = scan_fused_in(s, v, ValueLayout::TokenMajor, mask, state)?;
    Ok((o.swap_dims(1, 2), state))
}

fn scan_fused_in(
    s: Tensor<3>,
    v: Tensor<4>,
    layout: ValueLayout,
    mask: Option<&Tensor<2, Bool>>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    if s.is_tracked() || v.is_tracked() {
        return Err(AttnError::Config(
            "the fused Aaren scan trains in f32 only; train f64 models with mode `parallel` \
             (or `iterative`)"
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
        run::<f64>(s, v, layout, state)
    } else {
        run::<f32>(s, v, layout, state)
    }
}

/// [`prefix_attention`](super::prefix_attention) by the fused CPU kernels: the same
/// outputs, computed by one sequential pass per (sequence, head) over threads. On
/// tensors that carry gradients (f32) it is the operation of
/// [`scan_operation`](super::scan_operation), whose backward is a reverse scan.
///
/// - `scores`: `[B, H, L]`; `values`: `[B, H, L, D]`; `mask`: `[B, L]`, `true` = ignore
/// - returns: `[B, H, L, D]`
///
/// # Errors
///
/// [`AttnError::Shape`] if an input's shape is not the one above.
/// [`AttnError::Config`] if f64 tensors carry gradients (the fused form trains in f32).
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
    if !crate::device::is_cpu_backend(&scores.device()) {
        return super::prefix_attention(scores, values, mask);
    }
    let state = AarenState::empty(b, h, dims[3], &scores.device());
    let training = scores.is_tracked() || values.is_tracked();
    if training && scores.dtype() == DType::F32 && values.dtype() == DType::F32 {
        let scores = match mask {
            Some(m) => scores.mask_fill(
                m.clone().unsqueeze_dim::<3>(1).expand([b, h, l]),
                f32::NEG_INFINITY,
            ),
            None => scores,
        };
        let (out, _) = super::scan_operation::aaren_scan(scores, values.swap_dims(1, 2), state);
        return Ok(out.swap_dims(1, 2));
    }
    Ok(scan_fused(scores, values, mask, state)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    /// Both value layouts against Burn's parallel scan (an independent form of the same
    /// recurrence) within 1e-5 relative, with padding, and the same final state.
    #[test]
    fn token_major_and_head_major_match_the_burn_scan() {
        let device = Device::flex();
        let (b, h, l, d) = (3, 2, 50, 4);
        let normal = burn::tensor::Distribution::Normal(0.0, 3.0);
        let s = Tensor::<3>::random([b, h, l], normal, &device);
        let v = Tensor::<4>::random([b, h, l, d], normal, &device);
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new((0..b * l).map(|i| i % 5 == 2).collect::<Vec<_>>(), [b, l]),
            &device,
        );
        let want =
            host_f32(crate::aaren::prefix_attention(s.clone(), v.clone(), Some(&mask)).unwrap());
        let empty = || AarenState::empty(b, h, d, &device);
        // Token-major values: a contiguous [B, L, H, d] copy.
        let v_tm = Tensor::<4>::from_data(v.clone().swap_dims(1, 2).into_data(), &device);
        let (head, head_state) = scan_fused_in(
            s.clone(),
            v.clone(),
            ValueLayout::HeadMajor,
            Some(&mask),
            empty(),
        )
        .unwrap();
        let (token, token_state) =
            scan_fused_in(s, v_tm, ValueLayout::TokenMajor, Some(&mask), empty()).unwrap();
        let token = host_f32(token.swap_dims(1, 2));
        for (name, got) in [("head-major", host_f32(head)), ("token-major", token)] {
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| ((g - w).abs() / w.abs().max(1.0)) as f64)
                .fold(0.0, f64::max);
            assert!(worst < 1e-5, "{name}: {worst:e}");
        }
        assert_eq!(host_f32(head_state.a), host_f32(token_state.a));
        assert_eq!(host_f32(head_state.m), host_f32(token_state.m));
    }
}
