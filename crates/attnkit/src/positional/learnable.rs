//! Learnable positional encoding: a parameter of shape `[1, max_len, d_model]`, added to
//! the input and broadcast over the batch, trained with the rest of the model.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

use crate::error::{AttnError, Result, check_shape, check_size};
use crate::store::{TensorStore, TorchWeights, load_param};

/// Configuration of [`LearnablePositionalEncoding`].
#[derive(Config, Debug)]
pub struct LearnablePositionalEncodingConfig {
    /// Longest sequence the encoding covers.
    pub max_len: usize,
    /// Feature width.
    pub d_model: usize,
    /// Standard deviation of the N(0, std²) initialisation. Default: 1 (`torch.randn`,
    /// as in the original exercise).
    #[config(default = 1.0)]
    pub init_std: f64,
}

/// A trained offset per position. PyTorch name: `positional_encoding` `[1, max_len, d]`.
#[derive(Module, Debug)]
pub struct LearnablePositionalEncoding {
    /// `[1, max_len, d_model]`.
    pub positional_encoding: Param<Tensor<3>>,
}

impl LearnablePositionalEncodingConfig {
    /// Creates the encoding on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if `max_len` or `d_model` is 0, or the table would have
    /// more than 2^31 elements.
    pub fn init(&self, device: &Device) -> Result<LearnablePositionalEncoding> {
        if self.max_len == 0 || self.d_model == 0 {
            return Err(AttnError::Config(format!(
                "max_len and d_model must be at least 1, got {} and {}",
                self.max_len, self.d_model
            )));
        }
        check_size(
            &format!(
                "positional_encoding [1, max_len, d_model] with max_len = {}, d_model = {}",
                self.max_len, self.d_model
            ),
            &[self.max_len, self.d_model],
        )?;
        let init = Initializer::Normal {
            mean: 0.0,
            std: self.init_std,
        };
        Ok(LearnablePositionalEncoding {
            positional_encoding: init.init([1, self.max_len, self.d_model], device),
        })
    }
}

impl LearnablePositionalEncoding {
    /// Adds the encoding of positions 0..L.
    ///
    /// - `x`: `[B, L, d_model]` with L <= max_len
    /// - returns: `[B, L, d_model]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x` is not `[B, L, d_model]` with L at most `max_len`.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let [_, max_len, d] = self.positional_encoding.val().dims();
        check_shape(
            "x",
            &x.dims(),
            &[None, None, Some(d)],
            &["B", "L", "d_model"],
        )?;
        let l = x.dims()[1];
        if l > max_len {
            return Err(AttnError::Shape {
                what: "x".into(),
                expected: format!("[B, L <= {max_len}, {d}] (the encoding's max_len)"),
                got: x.dims().to_vec(),
            });
        }
        Ok(x + self.positional_encoding.val().slice([0..1, 0..l, 0..d]))
    }
}

impl TorchWeights for LearnablePositionalEncoding {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            positional_encoding: load_param(
                self.positional_encoding,
                store,
                &format!("{prefix}positional_encoding"),
            )?,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        store.insert_tensor(
            format!("{prefix}positional_encoding"),
            self.positional_encoding.val(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_a_prefix_of_the_table_and_broadcasts_over_the_batch() {
        let device = Device::flex();
        let pe = LearnablePositionalEncodingConfig::new(4, 2)
            .init(&device)
            .unwrap();
        let x = Tensor::<3>::zeros([3, 2, 2], &device);
        let y = pe.forward(x).unwrap();
        let table = pe.positional_encoding.val().slice([0..1, 0..2, 0..2]);
        for b in 0..3 {
            let row = y.clone().slice([b..b + 1, 0..2, 0..2]);
            assert!(row.equal(table.clone()).all().into_scalar::<bool>());
        }
    }

    #[test]
    fn too_long_input_is_an_error() {
        let device = Device::flex();
        let pe = LearnablePositionalEncodingConfig::new(4, 2)
            .init(&device)
            .unwrap();
        let err = pe.forward(Tensor::zeros([1, 5, 2], &device)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x: expected shape [B, L <= 4, 2] (the encoding's max_len), got [1, 5, 2]"
        );
    }

    #[test]
    fn the_parameter_trains() {
        let device = Device::flex().autodiff();
        let pe = LearnablePositionalEncodingConfig::new(3, 2)
            .init(&device)
            .unwrap();
        let y = pe.forward(Tensor::ones([2, 3, 2], &device)).unwrap();
        let grads = y.sum().backward();
        let g: Vec<f32> = pe
            .positional_encoding
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        // Each position is used once per batch element: gradient 2 everywhere.
        assert_eq!(g, [2.0; 6]);
    }
}
