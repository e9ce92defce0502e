//! Invariants that must hold for every input, checked with proptest:
//! - softmax rows sum to 1 (or are all 0 when fully masked), for logits up to ±1e4;
//! - masked keys never change the output, whatever their keys and values;
//! - self-attention without positional encoding is permutation-equivariant;
//! - external attention is permutation-equivariant over tokens too.
//!
//! Tolerances: sums within 1e-5 of 1 in f32; invariance checks within 1e-5 absolute
//! (only the order of f32 operations differs between the two runs).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use attnkit::attention::{
    AttentionMask, ExternalAttentionConfig, MultiHeadAttentionConfig,
    ScaledDotProductAttentionConfig, masked_softmax,
};
use attnkit::store::StoredTensor;
use attnkit_kernels::softmax::masked_softmax_in_place;
use burn::prelude::*;
use proptest::prelude::*;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    StoredTensor::from_tensor(t).data
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kernel_softmax_rows_sum_to_one(
        row in prop::collection::vec(-1.0e4f64..1.0e4, 1..40),
        mask_bits in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut r = row.clone();
        let masked = &mask_bits[..row.len()];
        masked_softmax_in_place(&mut r, masked).unwrap();
        let sum: f64 = r.iter().sum();
        if masked.iter().all(|m| *m) {
            prop_assert!(r.iter().all(|x| *x == 0.0));
        } else {
            prop_assert!((sum - 1.0).abs() < 1e-12, "sum {}", sum);
            for (x, m) in r.iter().zip(masked) {
                prop_assert!(*x >= 0.0 && (!m || *x == 0.0));
            }
        }
    }

    #[test]
    fn burn_softmax_rows_sum_to_one(
        rows in 1usize..6,
        cols in 1usize..20,
        seed in any::<u64>(),
        scale in prop::sample::select(vec![1.0f32, 100.0, 1.0e4]),
    ) {
        let device = Device::flex();
        device.seed(seed);
        let scores = Tensor::<2>::random([rows, cols], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device)
            .mul_scalar(scale);
        // Mask about a third of the entries; row 0 entirely.
        let mask = Tensor::<2>::random([rows, cols], burn::tensor::Distribution::Default, &device)
            .lower_elem(0.33);
        let row0 = Tensor::<2, Bool>::full([1, cols], true, &device);
        let mask = Tensor::cat(vec![row0, mask.slice([1..rows, 0..cols])], 0);
        let w = masked_softmax(scores, Some(mask.clone()), 1);
        let sums = host(w.clone().sum_dim(1));
        let m: Vec<bool> = mask.into_data().try_to_vec().unwrap();
        let w = host(w);
        for r in 0..rows {
            let all_masked = m[r * cols..(r + 1) * cols].iter().all(|x| *x);
            if all_masked {
                prop_assert_eq!(sums[r], 0.0);
            } else {
                prop_assert!((sums[r] - 1.0).abs() < 1e-5, "row {} sums to {}", r, sums[r]);
            }
            for c in 0..cols {
                prop_assert!(w[r * cols + c].is_finite());
                if m[r * cols + c] {
                    prop_assert_eq!(w[r * cols + c], 0.0);
                }
            }
        }
    }

    /// Changing the keys and values at masked positions does not change anything.
    #[test]
    fn masked_keys_never_change_the_output(
        seed in any::<u64>(),
        lk in 2usize..9,
        causal in any::<bool>(),
    ) {
        let device = Device::flex();
        device.seed(seed);
        let (b, h, lq, d) = (2, 2, 4, 4);
        let randn = |shape: [usize; 4]| Tensor::<4>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (q, k, v) = (randn([b, h, lq, d]), randn([b, h, lk, d]), randn([b, h, lk, d]));
        // Mask the last key of each sequence.
        let pad: Vec<bool> = (0..b * lk).map(|i| i % lk == lk - 1).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, lk]), &device);
        let sdpa = ScaledDotProductAttentionConfig::new().with_causal(causal).init(&device);
        let base = sdpa.forward(q.clone(), k.clone(), v.clone(), Some(mask.clone())).unwrap();
        // Replace the masked key/value by huge garbage.
        let garbage = randn([b, h, 1, d]).mul_scalar(1.0e6);
        let k2 = k.slice_assign([0..b, 0..h, lk - 1..lk, 0..d], garbage.clone());
        let v2 = v.slice_assign([0..b, 0..h, lk - 1..lk, 0..d], garbage);
        let other = sdpa.forward(q, k2, v2, Some(mask)).unwrap();
        prop_assert!(max_diff(&host(base.context), &host(other.context)) <= 1e-5);
        prop_assert!(max_diff(&host(base.weights), &host(other.weights)) <= 1e-6);
    }

    /// Permuting the tokens of x permutes the output of self-attention the same way.
    #[test]
    fn self_attention_is_permutation_equivariant(seed in any::<u64>(), l in 2usize..10) {
        let device = Device::flex();
        device.seed(seed);
        let e = 8;
        let mha = MultiHeadAttentionConfig::new(e, 2).init(&device).unwrap();
        let ext = ExternalAttentionConfig::new(e).with_memory(5).init(&device).unwrap();
        let x = Tensor::<3>::random([2, l, e], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        // A fixed derangement-like permutation: reverse, then rotate by one.
        let perm: Vec<i64> = (0..l).map(|i| ((l - 1 - i + 1) % l) as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(perm, [l]), &device);
        let permute = |t: Tensor<3>| t.select(1, idx.clone());

        let y = mha.forward_self(x.clone(), &AttentionMask::none()).unwrap().output;
        let yp = mha.forward_self(permute(x.clone()), &AttentionMask::none()).unwrap().output;
        prop_assert!(max_diff(&host(permute(y)), &host(yp)) <= 1e-5);

        let y = ext.forward(x.clone(), None).unwrap();
        let yp = ext.forward(permute(x), None).unwrap();
        prop_assert!(max_diff(&host(permute(y)), &host(yp)) <= 1e-5);
    }
}
