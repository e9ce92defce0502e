//! Sinusoidal positional encoding (Vaswani et al. 2017, §3.5):
//! PE(pos, 2i) = sin(pos / base^(2i/d)), PE(pos, 2i+1) = cos(pos / base^(2i/d)).
//! Fixed, not trained, and defined for any position; relative offsets are linear maps
//! of it, which lets attention read distances.

use burn::prelude::*;

use crate::error::{AttnError, Result, check_shape, check_size};

/// Configuration of [`SinusoidalPositionalEncoding`].
#[derive(Config, Debug)]
pub struct SinusoidalPositionalEncodingConfig {
    /// Longest sequence the table covers.
    pub max_len: usize,
    /// Feature width.
    pub d_model: usize,
    /// Wavelength base. Default: 10000.
    #[config(default = 10000.0)]
    pub base: f64,
}

/// A fixed table `[1, max_len, d_model]` added to the input.
#[derive(Module, Debug)]
pub struct SinusoidalPositionalEncoding {
    #[module(skip)]
    table: Tensor<3>,
}

impl SinusoidalPositionalEncodingConfig {
    /// Builds the table (in f64, rounded once) on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if `max_len` or `d_model` is 0, `base` is not positive, or the
    /// table would have more than 2^31 elements.
    pub fn init(&self, device: &Device) -> Result<SinusoidalPositionalEncoding> {
        let (l, d) = (self.max_len, self.d_model);
        if l == 0 || d == 0 || self.base <= 0.0 {
            return Err(AttnError::Config(format!(
                "max_len and d_model must be at least 1 and base positive, got {l}, {d}, {}",
                self.base
            )));
        }
        check_size(
            &format!("the table [1, max_len, d_model] with max_len = {l}, d_model = {d}"),
            &[l, d],
        )?;
        Ok(SinusoidalPositionalEncoding {
            table: Tensor::from_data(
                TensorData::new(sinusoid_table(l, d, self.base), [1, l, d]),
                device,
            ),
        })
    }
}

/// The encoding table `[max_len, d_model]` row-major.
pub fn sinusoid_table(max_len: usize, d_model: usize, base: f64) -> Vec<f32> {
    let mut table = Vec::with_capacity(max_len * d_model);
    for pos in 0..max_len {
        for i in 0..d_model {
            let pair = (i / 2) as f64;
            let angle = pos as f64 / base.powf(2.0 * pair / d_model as f64);
            table.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    table
}

impl SinusoidalPositionalEncoding {
    /// The table, `[1, max_len, d_model]`.
    pub fn table(&self) -> Tensor<3> {
        self.table.clone()
    }

    /// Adds the encoding of positions 0..L.
    ///
    /// - `x`: `[B, L, d_model]` with L <= max_len
    /// - returns: `[B, L, d_model]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x` is not `[B, L, d_model]` with L at most `max_len`.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let [_, max_len, d] = self.table.dims();
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
                expected: format!("[B, L <= {max_len}, {d}] (the table's max_len)"),
                got: x.dims().to_vec(),
            });
        }
        let table = self.table.clone().to_device(&x.device());
        Ok(x + table.slice([0..1, 0..l, 0..d]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_values_by_hand() {
        // d = 4: position 1 -> [sin 1, cos 1, sin(1/100), cos(1/100)].
        let t = sinusoid_table(2, 4, 10000.0);
        assert_eq!(&t[..4], &[0.0, 1.0, 0.0, 1.0]);
        let want = [1f64.sin(), 1f64.cos(), 0.01f64.sin(), 0.01f64.cos()];
        for (g, w) in t[4..].iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-7);
        }
    }

    #[test]
    fn forward_adds_the_table() {
        let device = Device::flex();
        let pe = SinusoidalPositionalEncodingConfig::new(8, 4)
            .init(&device)
            .unwrap();
        let y: Vec<f32> = pe
            .forward(Tensor::ones([1, 2, 4], &device))
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(&y[..4], &[1.0, 2.0, 1.0, 2.0]);
    }
}
