//! A linear layer with PyTorch's parameter layout.
//!
//! Burn's `Linear` stores its weight as `[d_input, d_output]`; PyTorch's `nn.Linear`
//! stores `[d_output, d_input]`. Keeping PyTorch's layout means weights trained there
//! load as they are, and the ONNX exporter writes them without transposes.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

use crate::error::{Result, check_shape};
use crate::store::{TensorStore, TorchWeights, load_param};

/// Configuration of a [`TorchLinear`].
#[derive(Config, Debug)]
pub struct TorchLinearConfig {
    /// Input features.
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Whether to add a bias. Default: true.
    #[config(default = true)]
    pub bias: bool,
    /// Initialiser of weight and bias. Default: PyTorch's `nn.Linear` default,
    /// U(-1/√d_input, 1/√d_input) for both.
    #[config(
        default = "Initializer::KaimingUniform{gain: 1.0 / 3.0f64.sqrt(), fan_out_only: false}"
    )]
    pub initializer: Initializer,
}

/// `y = x·Wᵀ + b` with `W` of shape `[d_output, d_input]`, as `torch.nn.Linear`.
#[derive(Module, Debug)]
pub struct TorchLinear {
    /// `[d_output, d_input]`.
    pub weight: Param<Tensor<2>>,
    /// `[d_output]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl TorchLinearConfig {
    /// Creates the layer on `device`.
    pub fn init(&self, device: &Device) -> TorchLinear {
        let fan = (Some(self.d_input), Some(self.d_output));
        let weight =
            self.initializer
                .init_with([self.d_output, self.d_input], fan.0, fan.1, device);
        let bias = self.bias.then(|| {
            self.initializer
                .init_with([self.d_output], fan.0, fan.1, device)
        });
        TorchLinear { weight, bias }
    }
}

impl TorchLinear {
    /// Input features.
    pub fn d_input(&self) -> usize {
        self.weight.val().dims()[1]
    }

    /// Output features.
    pub fn d_output(&self) -> usize {
        self.weight.val().dims()[0]
    }

    /// Applies the layer to the last axis.
    ///
    /// - `x`: `[..., d_input]`
    /// - returns: `[..., d_output]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`](crate::AttnError::Shape) if the last axis of `x` is not `d_input`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let d_in = self.d_input();
        let dims = x.dims();
        let mut expected = [None; D];
        expected[D - 1] = Some(d_in);
        let mut names = ["…"; D];
        names[D - 1] = "d_input";
        check_shape("linear input", &dims, &expected, &names)?;
        Ok(torch_linear(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
        ))
    }
}

/// x·Wᵀ + b over the last axis with a weight in PyTorch's `[out, in]` layout (shapes
/// checked by the caller): the rows of x as one `[N, in]` matrix times the transposed
/// weight as a view. Burn's `linear` makes the transposed weight contiguous on every call
/// (a copy of the whole weight); the matrix product reads the strides directly.
///
/// - `x`: `[..., in]`; `weight`: `[out, in]`; `bias`: `[out]`
/// - returns: `[..., out]`
pub(crate) fn torch_linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let mut dims = x.dims();
    let [d_out, d_in] = weight.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    dims[D - 1] = d_out;
    if rows == 0 {
        // No rows (an empty batch or sequence): Burn's matmul mis-shapes an empty
        // operand, and there is nothing to compute.
        return Tensor::zeros(dims, &x.device());
    }
    let y = x.reshape([rows, d_in]).matmul(weight.transpose());
    let y = match bias {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    };
    y.reshape(dims)
}

impl TorchWeights for TorchLinear {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        let weight = load_param(self.weight, store, &format!("{prefix}weight"))?;
        let bias = match self.bias {
            Some(b) => Some(load_param(b, store, &format!("{prefix}bias"))?),
            None => None,
        };
        Ok(Self { weight, bias })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        store.insert_tensor(format!("{prefix}weight"), self.weight.val());
        if let Some(b) = &self.bias {
            store.insert_tensor(format!("{prefix}bias"), b.val());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pytorch_layout_by_hand() {
        let device = Device::flex();
        let mut store = TensorStore::new("w");
        // W = [[1,0],[1,1],[0,2]] ([3, 2]), b = [0,1,2]: x = [3,4] -> [3, 8, 10].
        store
            .insert("weight", vec![3, 2], vec![1.0, 0.0, 1.0, 1.0, 0.0, 2.0])
            .unwrap();
        store.insert("bias", vec![3], vec![0.0, 1.0, 2.0]).unwrap();
        let layer = TorchLinearConfig::new(2, 3)
            .init(&device)
            .load_weights(&store, "")
            .unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &device);
        let y: Vec<f32> = layer.forward(x).unwrap().into_data().try_to_vec().unwrap();
        assert_eq!(y, [3.0, 8.0, 10.0]);
    }

    #[test]
    fn wrong_input_width_is_an_error() {
        let device = Device::flex();
        let layer = TorchLinearConfig::new(4, 3).init(&device);
        let err = layer
            .forward(Tensor::<3>::zeros([2, 5, 3], &device))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linear input: expected shape […, …, d_input=4], got [2, 5, 3]"
        );
    }

    #[test]
    fn wrong_weight_shape_is_an_error() {
        let device = Device::flex();
        let mut store = TensorStore::new("w.safetensors");
        store.insert("weight", vec![2, 3], vec![0.0; 6]).unwrap();
        let err = TorchLinearConfig::new(2, 3)
            .with_bias(false)
            .init(&device)
            .load_weights(&store, "")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "w.safetensors: weight `weight`: expected shape [3, 2], got [2, 3]"
        );
    }
}
