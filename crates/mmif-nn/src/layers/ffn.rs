//! The gated-Dconv feed-forward network (Restormer `FeedForward`, CDDFuse/EMMA `Mlp`) and
//! its GELU gate.

use burn::module::Module;
use burn::tensor::{Device, Tensor, activation};

use super::conv::host_opt;
use super::{Conv2d, ConvCfg, Epilogue, LayerNorm, Pad};
use crate::kernels;

/// Gated-Dconv feed-forward network: 1×1 to 2·hidden, grouped 3×3, GELU(x₁)·x₂, 1×1 back.
/// Restormer's `FeedForward` (depthwise) and the CDDFuse/EMMA `Mlp` (groups = hidden) are both this.
#[derive(Module, Debug)]
pub struct GatedFfn {
    pub project_in: Conv2d,
    pub dwconv: Conv2d,
    pub project_out: Conv2d,
}

impl GatedFfn {
    /// `groups` is the number of groups of the 3×3 conv over `2·hidden` channels.
    pub fn new(device: &Device, dim: usize, hidden: usize, out: usize, groups: usize, bias: bool, pad: Pad) -> Self {
        let mut dw = ConvCfg::same(3).bias(bias).groups(groups);
        dw.pad = pad;
        Self {
            project_in: Conv2d::new(device, dim, hidden * 2, 1, ConvCfg::same(1).bias(bias)),
            dwconv: Conv2d::new(device, hidden * 2, hidden * 2, 3, dw),
            project_out: Conv2d::new(device, hidden, out, 1, ConvCfg::same(1).bias(bias)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.project_out.forward(gelu_gate(self.dwconv.forward(self.project_in.forward(x))))
    }

    /// `residual + self.forward(x)`: one fused kernel (`kernels::gated_ffn`) when the
    /// 3×3 conv is depthwise and the tensors are plain `flex` ones, else the residual is added
    /// inside the last conv.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.fused(&x, [1, 1], &residual) {
            return y;
        }
        let y = gelu_gate(self.dwconv.forward(self.project_in.forward(x)));
        self.project_out.forward_fused(vec![y], None, Epilogue::residual(residual))
    }

    /// `x + self.forward(norm(x))` (Restormer's `x + ffn(norm2(x))`): the layer norm runs
    /// inside the fused kernel as it reads each input row (no normalised copy of `x`) where the
    /// kernel applies, else first.
    pub fn forward_norm_add(&self, norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
        let convs = (&self.project_in, &self.dwconv, Some(&self.project_out));
        if let Some(y) = expand_dw_project(convs, kernels::Middle::Gate, &x, [1, 1], Some(&x), Some(norm)) {
            return y;
        }
        self.forward_add(norm.forward(x.clone()), x)
    }

    /// [`Self::forward_add`] for a band of rows of a larger image (see
    /// [`Conv2d::forward_rows`]): `x` carries the neighbours' halo rows, the 3×3 conv pads
    /// `pad_rows`, and `residual` holds the band's own rows.
    pub fn forward_rows_add(&self, x: Tensor<4>, pad_rows: [usize; 2], residual: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.fused(&x, pad_rows, &residual) {
            return y;
        }
        let y = self.dwconv.forward_fused(vec![self.project_in.forward(x)], Some(pad_rows), Epilogue::default());
        self.project_out.forward_fused(vec![gelu_gate(y)], None, Epilogue::residual(residual))
    }

    /// Whether the layers have the shape `kernels::gated_ffn` fuses: 1×1 convs around a
    /// depthwise 3×3 (Restormer's `FeedForward`) or a 3×3 with a few channels per group (the
    /// CDDFuse/EMMA `Mlp`: two).
    pub fn fuses(&self) -> bool {
        fuses(&self.project_in, &self.dwconv, Some(&self.project_out), kernels::Middle::Gate)
    }

    /// The fused kernel, when it applies.
    fn fused(&self, x: &Tensor<4>, pad_rows: [usize; 2], residual: &Tensor<4>) -> Option<Tensor<4>> {
        let convs = (&self.project_in, &self.dwconv, Some(&self.project_out));
        expand_dw_project(convs, kernels::Middle::Gate, x, pad_rows, Some(residual), None)
    }
}

/// Whether `kernels::gated_ffn` fuses `project_in`, `dw`, `project_out` with `middle` between
/// them: 1×1 convs around a 3×3 conv of the expanded channels, depthwise or with at most
/// `kernels::MAX_GROUP` channels per group.
/// Without `project_out` (`middle` is then `Plain`) the 3×3 conv's output is the result.
fn fuses(project_in: &Conv2d, dw: &Conv2d, project_out: Option<&Conv2d>, middle: kernels::Middle) -> bool {
    let e = project_in.weight.dims()[0];
    let f = project_out.map_or(e, |p| p.weight.dims()[1]);
    let plain = middle == kernels::Middle::Plain;
    let g = dw.weight.dims()[1];
    let grouped = (1..=kernels::MAX_GROUP).contains(&g)
        && dw.weight.dims() == [e, g, 3, 3]
        && dw.groups * g == e
        && dw.stride == 1
        && dw.padding == 1;
    grouped
        && project_in.is_pointwise()
        && project_out.is_none_or(Conv2d::is_pointwise)
        && plain == project_out.is_none()
        && e == middle.expanded(f)
}

/// `[residual +] project_out(middle(dw(project_in(norm(x)))))` by `kernels::gated_ffn` on plain
/// `flex` tensors (see [`GatedFfn::forward_rows_add`] for `pad_rows`; `norm` is optional too;
/// without `project_out`, `middle` is `Plain` and the result is `dw(project_in(norm(x)))`);
/// `None` where it does not apply. Counts the convs' FLOPs.
pub(crate) fn expand_dw_project(
    (project_in, dw, project_out): (&Conv2d, &Conv2d, Option<&Conv2d>),
    middle: kernels::Middle,
    x: &Tensor<4>,
    pad_rows: [usize; 2],
    residual: Option<&Tensor<4>>,
    norm: Option<&LayerNorm>,
) -> Option<Tensor<4>> {
    let [b, c, h, w] = x.dims();
    let cin = project_in.weight.dims()[1];
    let e = project_in.weight.dims()[0];
    let [cout, f] = project_out.map_or([e, e], |p| {
        let d = p.weight.dims();
        [d[0], d[1]]
    });
    let oh = (h + pad_rows[0] + pad_rows[1]).checked_sub(2)?;
    if !fuses(project_in, dw, project_out, middle)
        || cin != c
        || w < 2
        || pad_rows.iter().any(|&p| p > 1)
        || oh == 0
        || (dw.reflect && h < 2)
        || residual.is_some_and(|r| r.dims() != [b, cout, oh, w])
    {
        return None;
    }
    let xh = kernels::host(x)?;
    let rh = kernels::host_maybe(residual)?;
    let (w_in, w_dw) = (kernels::host(&project_in.weight.val())?, kernels::host(&dw.weight.val())?);
    let w_out = match project_out {
        Some(p) => Some(kernels::host(&p.weight.val())?),
        None => None,
    };
    let (b_in, b_dw) = (host_opt(&project_in.bias)?, host_opt(&dw.bias)?);
    let b_out = match project_out {
        Some(p) => host_opt(&p.bias)?,
        None => None,
    };
    let norm = match norm {
        Some(n) if n.body.weight.dims() != [c] => return None,
        Some(n) => Some((kernels::host(&n.body.weight.val())?, host_opt(&n.body.bias)?)),
        None => None,
    };
    let wts = kernels::GatedFfnWeights {
        w_in: kernels::values(&w_in),
        b_in: b_in.as_ref().map(kernels::values),
        w_dw: kernels::values(&w_dw),
        b_dw: b_dw.as_ref().map(kernels::values),
        w_out: w_out.as_ref().map_or(&[], kernels::values),
        b_out: b_out.as_ref().map(kernels::values),
        hidden: f,
        cout,
        reflect: dw.reflect,
        middle,
        dw_group: dw.weight.dims()[1],
        norm: norm.as_ref().map(|(w, b)| (kernels::values(w), b.as_ref().map(kernels::values))),
    };
    let out = kernels::gated_ffn(kernels::values(&xh), [b, c, h, w], &wts, pad_rows, rh.as_ref().map(kernels::values));
    project_in.count([b, c, h, w], [0, 0]);
    dw.count([b, e, h, w], pad_rows);
    if let Some(p) = project_out {
        p.count([b, f, oh, w], [0, 0]);
    }
    Some(kernels::from_host(out, [b, cout, oh, w]))
}

/// `GELU(x₁)·x₂` where `x₁, x₂` are the two channel halves of `x` (erf GELU): one kernel
/// (`kernels::gelu_gate`) for non-autodiff `flex` tensors, the differentiable
/// `train_ops::gelu_gate` for autodiff ones on `flex`, burn ops otherwise.
pub fn gelu_gate(x: Tensor<4>) -> Tensor<4> {
    if let Some(xh) = kernels::host(&x) {
        let [b, c, h, w] = x.dims();
        if c % 2 == 0 {
            return kernels::from_host(kernels::gelu_gate(kernels::values(&xh), x.dims()), [b, c / 2, h, w]);
        }
    }
    // training on `flex`: the fused op with its own backward pass
    if let Some(y) = crate::train_ops::gelu_gate(&x) {
        return y;
    }
    gelu_gate_composed(x)
}

/// [`gelu_gate`] as burn ops (differentiable).
pub fn gelu_gate_composed(x: Tensor<4>) -> Tensor<4> {
    let mut halves = x.chunk(2, 1).into_iter();
    let (x1, x2) = (halves.next().expect("two halves"), halves.next().expect("two halves"));
    activation::gelu(x1) * x2
}
