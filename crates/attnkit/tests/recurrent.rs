//! Recurrent layers: padded batches give each sequence's unpadded result.

#![allow(clippy::unwrap_used)]

use attnkit::recurrent::{RecurrentConfig, RecurrentKind};
use burn::prelude::*;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// A batch of lengths [6, 3, 1] padded to 6 with garbage equals running each sequence
/// alone: outputs at real positions, zeros at padding, and h_n / c_n per direction —
/// including the reverse direction, which must start at each sequence's last real token.
#[test]
fn padded_batches_equal_unpadded_sequences() {
    let device = Device::flex();
    let (l, input, hidden) = (6, 3, 4);
    let lengths = [6usize, 3, 1];
    for kind in [RecurrentKind::Rnn, RecurrentKind::Lstm, RecurrentKind::Gru] {
        let net = RecurrentConfig::new(kind, input, hidden)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device)
            .unwrap();
        let x = Tensor::<3>::random(
            [3, l, input],
            burn::tensor::Distribution::Normal(0.0, 3.0),
            &device,
        );
        let batch = net.forward(x.clone(), Some(&lengths)).unwrap();
        let out = host(batch.output.clone());
        let h_n = host(batch.h_n.clone());
        let c_n = batch.c_n.clone().map(host);
        let width = 2 * hidden;
        for (i, &n) in lengths.iter().enumerate() {
            let alone = net
                .forward(x.clone().narrow(0, i, 1).narrow(1, 0, n), None)
                .unwrap();
            let a_out = host(alone.output);
            for t in 0..l {
                let got = &out[(i * l + t) * width..(i * l + t + 1) * width];
                if t < n {
                    let want = &a_out[t * width..(t + 1) * width];
                    for (g, w) in got.iter().zip(want) {
                        assert!((g - w).abs() < 1e-5, "{kind:?} seq {i} t {t}: {g} vs {w}");
                    }
                } else {
                    assert!(got.iter().all(|&g| g == 0.0), "{kind:?} padding output");
                }
            }
            let a_h = host(alone.h_n);
            let a_c = alone.c_n.map(host);
            for k in 0..4 {
                for j in 0..hidden {
                    let g = h_n[(k * 3 + i) * hidden + j];
                    let w = a_h[k * hidden + j];
                    assert!(
                        (g - w).abs() < 1e-5,
                        "{kind:?} h_n[{k}] seq {i}: {g} vs {w}"
                    );
                    if let (Some(c), Some(ac)) = (&c_n, &a_c) {
                        assert!((c[(k * 3 + i) * hidden + j] - ac[k * hidden + j]).abs() < 1e-5);
                    }
                }
            }
        }
    }
}

#[test]
fn bad_lengths_and_inputs_are_errors() {
    let device = Device::flex();
    let net = RecurrentConfig::new(RecurrentKind::Gru, 3, 2)
        .init(&device)
        .unwrap();
    let x = Tensor::<3>::zeros([2, 4, 3], &device);
    let err = net
        .forward(x.clone(), Some(&[4, 5]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most L = 4"), "{err}");
    let err = net
        .forward(Tensor::zeros([2, 4, 5], &device), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("input_size"), "{err}");
    assert!(
        RecurrentConfig::new(RecurrentKind::Lstm, 3, 0)
            .init(&device)
            .is_err()
    );
}
