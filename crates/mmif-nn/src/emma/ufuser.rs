//! EMMA's U-Fuser and its Restormer-CNN blocks (see the diagram in [`super`]).

use burn::module::Module;
use burn::tensor::{Device, Tensor, activation};

use super::CHANNELS;
use crate::layers::{BaseFeatureExtraction, Conv2d, ConvCfg, ConvTranspose2d, Pad};

const HEADS: usize = 8;

fn reflect3() -> ConvCfg {
    ConvCfg::same(3).reflect()
}

/// The `nn.Sequential(conv 3×3, ReLU, conv 3×3)` inside a [`ResBlock`].
#[derive(Module, Debug)]
pub struct ResConvs {
    pub _0: Conv2d,
    pub _2: Conv2d,
}

/// `x + conv(ReLU(conv(x)))`, reflect-padded 3×3 convs with bias.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv: ResConvs,
}

impl ResBlock {
    pub fn new(device: &Device, dim: usize) -> Self {
        let cfg = reflect3().bias(true);
        Self { conv: ResConvs { _0: Conv2d::new(device, dim, dim, 3, cfg), _2: Conv2d::new(device, dim, dim, 3, cfg) } }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.conv._2.forward(activation::relu(self.conv._0.forward(x)))
    }
}

/// The local branch: two [`ResBlock`]s.
#[derive(Module, Debug)]
pub struct LocalFeatureExtraction {
    pub Extraction: Vec<ResBlock>,
}

impl LocalFeatureExtraction {
    pub fn new(device: &Device, dim: usize) -> Self {
        Self { Extraction: (0..2).map(|_| ResBlock::new(device, dim)).collect() }
    }

    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for block in &self.Extraction {
            x = block.forward(x);
        }
        x
    }
}

/// `Restormer_CNN_block`: embed, then global ‖ local, then `FFN` over their concatenation.
#[derive(Module, Debug)]
pub struct RestormerCnnBlock {
    pub embed: Conv2d,
    pub GlobalFeature: BaseFeatureExtraction,
    pub LocalFeature: LocalFeatureExtraction,
    pub FFN: Conv2d,
}

impl RestormerCnnBlock {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        Self {
            embed: Conv2d::new(device, cin, cout, 3, reflect3()),
            GlobalFeature: BaseFeatureExtraction::new(device, cout, HEADS, Pad::Reflect),
            LocalFeature: LocalFeatureExtraction::new(device, cout),
            FFN: Conv2d::new(device, cout * 2, cout, 3, reflect3()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.embed.forward(x);
        let global = self.GlobalFeature.forward(x.clone());
        let local = self.LocalFeature.forward(x);
        self.FFN.forward(Tensor::cat(vec![global, local], 1))
    }
}

/// `nn.Sequential(ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), ReLU)`: doubles the size.
#[derive(Module, Debug)]
pub struct UpSample {
    pub _0: ConvTranspose2d,
}

impl UpSample {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        Self { _0: ConvTranspose2d::new(device, cin, cout, 4, 2, 1, false) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        activation::relu(self._0.forward(x))
    }
}

/// `nn.Sequential(Conv2d(c, 1, 3, padding=1, ...), Sigmoid)`: the output head.
#[derive(Module, Debug)]
pub struct Head {
    pub _0: Conv2d,
}

impl Head {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        activation::sigmoid(self._0.forward(x))
    }
}

/// The EMMA fusion network (`Ufuser`). Parameter paths are the official state-dict keys.
#[derive(Module, Debug)]
pub struct Ufuser {
    pub V_en_1: RestormerCnnBlock,
    pub V_en_2: RestormerCnnBlock,
    pub V_en_3: RestormerCnnBlock,
    pub V_en_4: RestormerCnnBlock,
    pub I_en_1: RestormerCnnBlock,
    pub I_en_2: RestormerCnnBlock,
    pub I_en_3: RestormerCnnBlock,
    pub I_en_4: RestormerCnnBlock,
    pub f_1: RestormerCnnBlock,
    pub f_2: RestormerCnnBlock,
    pub f_3: RestormerCnnBlock,
    pub f_4: RestormerCnnBlock,
    pub V_down1: Conv2d,
    pub V_down2: Conv2d,
    pub V_down3: Conv2d,
    pub I_down1: Conv2d,
    pub I_down2: Conv2d,
    pub I_down3: Conv2d,
    pub up4: UpSample,
    pub up3: UpSample,
    pub up2: UpSample,
    pub de_1: RestormerCnnBlock,
    pub de_2: RestormerCnnBlock,
    pub de_3: RestormerCnnBlock,
    pub de_4: RestormerCnnBlock,
    pub last: Head,
}

impl Ufuser {
    /// A U-Fuser with PyTorch's default initialisation (load weights with [`crate::weights`]).
    pub fn new(device: &Device) -> Self {
        let [c1, c2, c3, c4] = CHANNELS;
        let block = |cin, cout| RestormerCnnBlock::new(device, cin, cout);
        let down = |c| Conv2d::new(device, c, c, 3, reflect3().stride(2));
        Self {
            V_en_1: block(1, c1),
            V_en_2: block(c1, c2),
            V_en_3: block(c2, c3),
            V_en_4: block(c3, c4),
            I_en_1: block(1, c1),
            I_en_2: block(c1, c2),
            I_en_3: block(c2, c3),
            I_en_4: block(c3, c4),
            f_1: block(2 * c1, c1),
            f_2: block(2 * c2, c2),
            f_3: block(2 * c3, c3),
            f_4: block(2 * c4, c4),
            V_down1: down(c1),
            V_down2: down(c2),
            V_down3: down(c3),
            I_down1: down(c1),
            I_down2: down(c2),
            I_down3: down(c3),
            up4: UpSample::new(device, c4, c3),
            up3: UpSample::new(device, c3, c2),
            up2: UpSample::new(device, c2, c1),
            de_1: block(2 * c1, c1),
            de_2: block(2 * c2, c2),
            de_3: block(2 * c3, c3),
            de_4: block(c4, c4),
            last: Head { _0: Conv2d::new(device, c1, 1, 3, reflect3().bias(true)) },
        }
    }

    /// One pass: `Ufuser(i, v)` with `ir` (infrared or functional) and `vis` (visible or MRI),
    /// both `B×1×H×W` in [0, 1]; returns `B×1×H×W` in (0,1), not normalised.
    ///
    /// # Panics
    /// When `H` or `W` is not a multiple of 8 (the skip connections would not line up) or the
    /// shapes differ. The procedures ([`Ufuser::fuse`]) check sizes and return errors instead.
    pub fn forward(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        assert!(
            h.is_multiple_of(8) && w.is_multiple_of(8),
            "Ufuser::forward needs sides that are multiples of 8, got {h}×{w}"
        );
        assert_eq!(ir.dims(), vis.dims(), "Ufuser::forward: the sources differ in shape");
        let i1 = self.I_en_1.forward(ir);
        let i2 = self.I_en_2.forward(self.I_down1.forward(i1.clone()));
        let i3 = self.I_en_3.forward(self.I_down2.forward(i2.clone()));
        let i4 = self.I_en_4.forward(self.I_down3.forward(i3.clone()));

        let v1 = self.V_en_1.forward(vis);
        let v2 = self.V_en_2.forward(self.V_down1.forward(v1.clone()));
        let v3 = self.V_en_3.forward(self.V_down2.forward(v2.clone()));
        let v4 = self.V_en_4.forward(self.V_down3.forward(v3.clone()));

        let f1 = self.f_1.forward(Tensor::cat(vec![i1, v1], 1));
        let f2 = self.f_2.forward(Tensor::cat(vec![i2, v2], 1));
        let f3 = self.f_3.forward(Tensor::cat(vec![i3, v3], 1));
        let f4 = self.f_4.forward(Tensor::cat(vec![i4, v4], 1));

        let out = self.up4.forward(self.de_4.forward(f4));
        let out = self.up3.forward(self.de_3.forward(Tensor::cat(vec![out, f3], 1)));
        let out = self.up2.forward(self.de_2.forward(Tensor::cat(vec![out, f2], 1)));
        let out = self.de_1.forward(Tensor::cat(vec![out, f1], 1));
        self.last.forward(out)
    }

    /// The output of the first infrared encoder block (`I_en_1(ir)`), `B×8×H×W`.
    pub fn ir_first_block(&self, ir: Tensor<4>) -> Tensor<4> {
        self.I_en_1.forward(ir)
    }
}
