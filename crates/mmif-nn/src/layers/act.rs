//! `nn.PReLU`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::kernels;

/// `nn.PReLU()` with one shared slope.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::full([1], 0.25, device)) }
    }

    /// The slope as a number, if the parameter is a plain `flex` tensor of one value (the
    /// kernels' path); `None` for autodiff parameters.
    pub(super) fn host_slope(&self) -> Option<f32> {
        let w = kernels::host(&self.weight.val())?;
        match kernels::values(&w) {
            [a] => Some(*a),
            _ => None,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if let (Some(a), Some(xh)) = (self.host_slope(), kernels::host(&x)) {
            return kernels::from_host(kernels::prelu(kernels::values(&xh), a), x.dims());
        }
        let a = self.weight.val().reshape([1; D]);
        let neg = x.clone().clamp_max(0.0);
        x.clamp_min(0.0) + neg * a
    }
}
