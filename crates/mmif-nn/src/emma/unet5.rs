//! EMMA's UNet5 pseudo-sensors (`Ai`: fused → infrared-like, `Av`: fused → visible-like).

use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, activation};

use super::{EmmaError, Head, UpSample, check_size};
use crate::layers::{BatchNorm2d, Conv2d, ConvCfg, max_pool2x2};

/// `nn.Sequential(conv 3×3, BN, ReLU, conv 3×3, BN, ReLU)` of a UNet5 [`ConvBlock`].
#[derive(Module, Debug)]
pub struct ConvBlockLayers {
    pub _0: Conv2d,
    pub _1: BatchNorm2d,
    pub _3: Conv2d,
    pub _4: BatchNorm2d,
}

/// Two (3×3 conv with bias, zero padding → BatchNorm → ReLU) stages.
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: ConvBlockLayers,
}

impl ConvBlock {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        let cfg = ConvCfg::same(3).bias(true);
        Self {
            conv: ConvBlockLayers {
                _0: Conv2d::new(device, cin, cout, 3, cfg),
                _1: BatchNorm2d::new(device, cout),
                _3: Conv2d::new(device, cout, cout, 3, cfg),
                _4: BatchNorm2d::new(device, cout),
            },
        }
    }

    pub fn forward(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        let stage = |conv: &Conv2d, bn: &BatchNorm2d, x| match mode {
            BnMode::Eval => activation::relu(bn.forward(conv.forward(x))),
            // the conv's bias goes to the batch norm, which cancels it but for the running mean
            BnMode::Train => bn.forward_train_relu(conv.forward_unbiased(x), conv.bias.as_ref().map(|b| b.val())),
        };
        let c = &self.conv;
        stage(&c._3, &c._4, stage(&c._0, &c._1, x))
    }
}

/// Which statistics BatchNorm uses (`model.eval()` / `model.train()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BnMode {
    /// Running statistics; nothing changes.
    #[default]
    Eval,
    /// Batch statistics; the running statistics are updated (momentum 0.1).
    Train,
}

/// The UNet5 pseudo-sensor (`Ai`: fused → infrared-like, `Av`: fused → visible-like): five
/// [`ConvBlock`] levels with 2×2 max-pooling (64 … 1024 channels), transposed-conv upsampling
/// with skip concatenations, 3×3 conv + sigmoid head.
#[derive(Module, Debug)]
pub struct UNet5 {
    pub down1: ConvBlock,
    pub down2: ConvBlock,
    pub down3: ConvBlock,
    pub down4: ConvBlock,
    pub down5: ConvBlock,
    pub up_sample5: UpSample,
    pub up4: ConvBlock,
    pub up_sample4: UpSample,
    pub up3: ConvBlock,
    pub up_sample3: UpSample,
    pub up2: ConvBlock,
    pub up_sample2: UpSample,
    pub up1: ConvBlock,
    pub last: Head,
}

/// UNet5 pools four times: a single pass needs sides that are multiples of this.
pub const UNET5_MULTIPLE: usize = 16;

impl UNet5 {
    pub fn new(device: &Device) -> Self {
        let block = |cin, cout| ConvBlock::new(device, cin, cout);
        let up = |cin, cout| UpSample::new(device, cin, cout);
        Self {
            down1: block(1, 64),
            down2: block(64, 128),
            down3: block(128, 256),
            down4: block(256, 512),
            down5: block(512, 1024),
            up_sample5: up(1024, 512),
            up4: block(1024, 512),
            up_sample4: up(512, 256),
            up3: block(512, 256),
            up_sample3: up(256, 128),
            up2: block(256, 128),
            up_sample2: up(128, 64),
            up1: block(128, 64),
            last: Head { _0: Conv2d::new(device, 64, 1, 3, ConvCfg::same(3).bias(true)) },
        }
    }

    /// Evaluation mode (BatchNorm running statistics). `x` is `B×1×H×W`, sides multiples of 16.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_mode(x, BnMode::Eval)
    }

    /// Training mode: BatchNorm on batch statistics, running statistics updated.
    pub fn forward_train(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_mode(x, BnMode::Train)
    }

    pub fn forward_mode(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        assert!(
            h.is_multiple_of(UNET5_MULTIPLE) && w.is_multiple_of(UNET5_MULTIPLE),
            "UNet5::forward needs sides that are multiples of 16, got {h}×{w}"
        );
        let d1 = self.down1.forward(x, mode);
        let d2 = self.down2.forward(max_pool2x2(d1.clone()), mode);
        let d3 = self.down3.forward(max_pool2x2(d2.clone()), mode);
        let d4 = self.down4.forward(max_pool2x2(d3.clone()), mode);
        let out = self.down5.forward(max_pool2x2(d4.clone()), mode);

        let out = self.up4.forward(Tensor::cat(vec![self.up_sample5.forward(out), d4], 1), mode);
        let out = self.up3.forward(Tensor::cat(vec![self.up_sample4.forward(out), d3], 1), mode);
        let out = self.up2.forward(Tensor::cat(vec![self.up_sample3.forward(out), d2], 1), mode);
        let out = self.up1.forward(Tensor::cat(vec![self.up_sample2.forward(out), d1], 1), mode);
        self.last.forward(out)
    }

    /// Evaluation on any size of at least 16×16: reflect-pads to a multiple of 16 when needed
    /// (evenly on both sides), then crops back. `x` is `B×1×H×W` in [0, 1].
    pub fn sense(&self, x: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        check_size(x.dims(), UNET5_MULTIPLE)?;
        let [_, _, h, w] = x.dims();
        let (ph, pw) = (h.next_multiple_of(UNET5_MULTIPLE) - h, w.next_multiple_of(UNET5_MULTIPLE) - w);
        if ph == 0 && pw == 0 {
            return Ok(self.forward(x));
        }
        let (top, left) = (ph / 2, pw / 2);
        let x = x.pad((left, pw - left, top, ph - top), PadMode::Reflect);
        Ok(self.forward(x).narrow(2, top, h).narrow(3, left, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn batch_norm_train_updates_running_stats_like_pytorch() {
        let dev = crate::cpu();
        let bn = BatchNorm2d::new(&dev, 1);
        // One channel, values 0..8: mean 3.5, biased var 5.25, unbiased 6.
        let v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [2, 1, 2, 2]), &dev);
        let y = crate::weights::tensor_to_vec(bn.forward_train(x));
        let expect0 = -3.5 / (5.25f32 + 1e-5).sqrt();
        assert!((y[0] - expect0).abs() < 1e-5, "{y:?}");
        let mean = crate::weights::tensor_to_vec(bn.running_mean.value());
        let var = crate::weights::tensor_to_vec(bn.running_var.value());
        assert!((mean[0] - 0.35).abs() < 1e-6, "{mean:?}");
        assert!((var[0] - (0.9 + 0.6)).abs() < 1e-6, "{var:?}");
        let sd = crate::weights::state_dict(&bn);
        assert_eq!(sd["running_mean"].data, mean);
        assert_eq!(sd["running_var"].data, var);
    }
}
