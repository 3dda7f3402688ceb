//! Normalisation layers: Restormer's per-pixel layer norm over channels and `nn.BatchNorm2d`.

use burn::module::{Module, Param, RunningState};
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Tensor};

use super::conv::host_opt;
use crate::kernels;

/// Parameters of a layer norm over the channel dimension (the official `WithBias_LayerNorm`,
/// or `BiasFree_LayerNorm` when `bias` is `None`).
#[derive(Module, Debug)]
pub struct LayerNormBody {
    pub weight: Param<Tensor<1>>,
    pub bias: Option<Param<Tensor<1>>>,
}

/// Restormer's `LayerNorm(dim, type)`: normalises every pixel over its channels (eps 1e-5,
/// biased variance). Computed directly on `B×C×H×W`, no transposes.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub body: LayerNormBody,
}

impl LayerNorm {
    pub fn new(device: &Device, dim: usize, with_bias: bool) -> Self {
        Self {
            body: LayerNormBody {
                weight: Param::from_tensor(Tensor::ones([dim], device)),
                bias: with_bias.then(|| Param::from_tensor(Tensor::zeros([dim], device))),
            },
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.forward_kernel(&x) {
            return y;
        }
        // training on `flex`: the fused op with its own backward pass
        if let Some(b) = &self.body.bias
            && let Some(y) = crate::train_ops::layer_norm(&x, &self.body.weight.val(), &b.val())
        {
            return y;
        }
        self.forward_composed(x)
    }

    /// `kernels::layer_norm` for non-autodiff `flex` tensors.
    fn forward_kernel(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        let xh = kernels::host(x)?;
        let wh = kernels::host(&self.body.weight.val())?;
        let bh = host_opt(&self.body.bias)?;
        let out =
            kernels::layer_norm(kernels::values(&xh), x.dims(), kernels::values(&wh), bh.as_ref().map(kernels::values));
        Some(kernels::from_host(out, x.dims()))
    }

    /// The layer norm as burn ops (differentiable).
    pub fn forward_composed(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.dims()[1];
        let mu = x.clone().mean_dim(1);
        let centred = x.clone() - mu;
        let var = centred.clone().square().mean_dim(1);
        let inv = (var + 1e-5).sqrt().recip();
        let w = self.body.weight.val().reshape([1, c, 1, 1]);
        match &self.body.bias {
            Some(b) => centred * inv * w + b.val().reshape([1, c, 1, 1]),
            None => x * inv * w,
        }
    }
}

/// `nn.BatchNorm2d(c)` (eps 1e-5, momentum 0.1, affine, tracking running statistics).
///
/// The running statistics are buffers: they load from and export to the state-dict keys
/// `running_mean` / `running_var`, and never receive gradients. PyTorch's
/// `num_batches_tracked` counter is not kept (it only matters for `momentum=None`); the loader
/// ignores it, and PyTorch's `load_state_dict` accepts a state dict without it.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub momentum: f64,
    pub eps: f64,
}

impl BatchNorm2d {
    pub fn new(device: &Device, c: usize) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([c], device)),
            bias: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// Evaluation mode (`model.eval()`): normalises with the running statistics.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean = self.running_mean.value().to_device(&device);
        let var = self.running_var.value().to_device(&device);
        batch_norm(x, self.weight.val(), self.bias.val(), mean, var, self.eps)
    }

    /// Training mode (`model.train()`): normalises with the batch statistics (biased variance)
    /// and updates the running statistics as PyTorch does, `r ← (1-m)·r + m·s`, with the
    /// *unbiased* batch variance (`n/(n-1)`, `n = B·H·W`) for `running_var`.
    pub fn forward_train(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        let device = x.device();
        let out = batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
        self.update_running(b * h * w, out.mean.detach(), out.variance.detach(), &device);
        out.output
    }

    /// `relu(self.forward_train(x + bias))` for a conv's output `x` without its `bias`: on
    /// `flex` one op with its own backward pass ([`crate::train_ops::batch_norm_relu`]: the
    /// normalisation and the ReLU in one pass, only `x` kept for the backward pass, the bias
    /// never added to the activations since the batch mean cancels it), else burn's ops.
    pub fn forward_train_relu(&self, x: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let (weight, shift) = (self.weight.val(), self.bias.val());
        let Some(out) = crate::train_ops::batch_norm_relu(&x, bias.as_ref(), &weight, &shift, self.eps) else {
            let x = match bias {
                Some(bias) => x + bias.reshape([1, c, 1, 1]),
                None => x,
            };
            return burn::tensor::activation::relu(self.forward_train(x));
        };
        let vector = |v: Vec<f64>| {
            let v: Vec<f32> = v.into_iter().map(|s| s as f32).collect();
            Tensor::<1>::from_data(burn::tensor::TensorData::new(v, [c]), &device)
        };
        self.update_running(b * h * w, vector(out.mean), vector(out.variance), &device);
        out.output
    }

    /// `r ← (1-m)·r + m·s` of both running statistics for batch mean `mean` and biased variance
    /// `variance` over `n` values (the unbiased variance `n/(n-1)·variance` for `running_var`).
    fn update_running(&self, n: usize, mean: Tensor<1>, variance: Tensor<1>, device: &Device) {
        let n = n as f64;
        let m = self.momentum;
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let mean = self.running_mean.value_sync().to_device(device) * (1.0 - m) + mean * m;
        let var = self.running_var.value_sync().to_device(device) * (1.0 - m) + variance * (m * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        // Settle the update now so that readers (state dicts, `forward`) see it.
        self.running_mean.value_sync();
        self.running_var.value_sync();
    }
}
