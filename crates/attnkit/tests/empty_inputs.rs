//! Empty batches and empty sequences are valid inputs: every module returns outputs of
//! the right (empty) shape, never a panic. Burn's CPU backend broadcasts an empty batch
//! as if it had one element (a reshape panic at best, an out-of-bounds read in its matrix
//! product at worst), so each module is run on B = 0 and on L = 0 here.

#![allow(clippy::unwrap_used)]

use attnkit::aaren::{AarenConfig, AarenMode};
use attnkit::attention::{
    AdditiveAttentionConfig, AttentionMask, ExternalAttentionConfig, LuongAttentionConfig,
    LuongScore, MultiHeadAttentionConfig, ScaledDotProductAttentionConfig,
};
use attnkit::recurrent::{RecurrentConfig, RecurrentKind};
use burn::prelude::*;
use burn::tensor::Distribution;

fn normal<const D: usize>(dims: [usize; D]) -> Tensor<D> {
    Tensor::random(dims, Distribution::Normal(0.0, 1.0), &Device::flex())
}

/// Every value of `t` (there may be none) is zero.
fn all_zero<const D: usize>(t: Tensor<D>) -> bool {
    t.try_into_vec_as::<f32>()
        .unwrap()
        .iter()
        .all(|&v| v == 0.0)
}

#[test]
fn scaled_dot_product_attention() {
    let sdpa = ScaledDotProductAttentionConfig::new().init(&Device::flex());
    // (B, H, Lq, Lk): an empty batch, no heads, no queries, no keys.
    for (b, h, lq, lk) in [(0, 2, 3, 4), (2, 0, 3, 4), (2, 2, 0, 4), (2, 2, 3, 0)] {
        let out = sdpa
            .forward(
                normal([b, h, lq, 8]),
                normal([b, h, lk, 8]),
                normal([b, h, lk, 5]),
                None,
            )
            .unwrap();
        assert_eq!(out.context.dims(), [b, h, lq, 5]);
        assert_eq!(out.weights.dims(), [b, h, lq, lk]);
        if lk == 0 {
            // No keys to attend to: a weighted sum of nothing.
            assert!(all_zero(out.context));
        }
    }
}

#[test]
fn multi_head_attention() {
    let mha = MultiHeadAttentionConfig::new(8, 2)
        .init(&Device::flex())
        .unwrap();
    for (b, lq, lk) in [(0, 3, 4), (2, 0, 4), (2, 3, 0)] {
        let out = mha
            .forward(
                normal([b, lq, 8]),
                normal([b, lk, 8]),
                normal([b, lk, 8]),
                &AttentionMask::none(),
            )
            .unwrap();
        assert_eq!(out.output.dims(), [b, lq, 8]);
        assert_eq!(out.weights.dims(), [b, 2, lq, lk]);
        let context = mha
            .forward_context(
                normal([b, lq, 8]),
                normal([b, lk, 8]),
                normal([b, lk, 8]),
                &AttentionMask::none(),
            )
            .unwrap();
        assert_eq!(context.dims(), [b, lq, 8]);
    }
}

#[test]
fn aaren_in_every_mode() {
    for mode in [AarenMode::Iterative, AarenMode::Parallel, AarenMode::Fused] {
        let layer = AarenConfig::new(8, 2)
            .with_mode(mode)
            .init(&Device::flex())
            .unwrap();
        for (b, l) in [(0, 3), (2, 0)] {
            let out = layer.forward(normal([b, l, 8]), None).unwrap();
            assert_eq!(out.dims(), [b, l, 8], "{mode:?}");
        }
    }
}

#[test]
fn recurrent_networks() {
    for kind in [RecurrentKind::Rnn, RecurrentKind::Lstm, RecurrentKind::Gru] {
        let net = RecurrentConfig::new(kind, 3, 4)
            .with_bidirectional(true)
            .with_num_layers(2)
            .init(&Device::flex())
            .unwrap();
        for (b, l) in [(0, 5), (2, 0)] {
            let out = net.forward(normal([b, l, 3]), None).unwrap();
            assert_eq!(out.output.dims(), [b, l, 8], "{kind:?}");
            assert_eq!(out.h_n.dims(), [4, b, 4], "{kind:?}");
            assert_eq!(out.c_n.is_some(), kind == RecurrentKind::Lstm);
            if l == 0 {
                // No steps: the final states are the initial zeros.
                assert!(all_zero(out.h_n), "{kind:?}");
            }
        }
    }
}

#[test]
fn external_attention() {
    let ext = ExternalAttentionConfig::new(8)
        .with_memory(5)
        .init(&Device::flex())
        .unwrap();
    for (b, n) in [(0, 3), (2, 0)] {
        assert_eq!(
            ext.forward(normal([b, n, 8]), None).unwrap().dims(),
            [b, n, 8]
        );
    }
}

#[test]
fn additive_and_luong_attention() {
    let device = Device::flex();
    let additive = AdditiveAttentionConfig::new(6, 4, 5).init(&device).unwrap();
    for (b, l) in [(0, 3), (2, 0)] {
        let out = additive
            .forward(normal([b, 6]), normal([b, l, 4]), None)
            .unwrap();
        assert_eq!(out.context.dims(), [b, 4]);
        assert_eq!(out.weights.dims(), [b, l]);
        assert!(all_zero(out.context));
    }
    for score in [LuongScore::Dot, LuongScore::General, LuongScore::Concat] {
        let luong = LuongAttentionConfig::new(4, 4)
            .with_score(score)
            .init(&device)
            .unwrap();
        for (b, l) in [(0, 3), (2, 0)] {
            let out = luong
                .forward(normal([b, 4]), normal([b, l, 4]), None)
                .unwrap();
            assert_eq!(out.output.dims(), [b, 4], "{score:?}");
            assert_eq!(out.weights.dims(), [b, l], "{score:?}");
            assert!(all_zero(out.context), "{score:?}");
        }
    }
}
