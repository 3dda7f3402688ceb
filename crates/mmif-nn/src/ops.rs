//! General tensor operations the networks share, each with a one-pass kernel on plain `flex`
//! tensors and burn's ops otherwise: PyTorch's nearest resize, the pooled softmax of attention
//! scores, L1 normalisation.

use burn::tensor::{Device, Int, Tensor, TensorData, activation};

use crate::kernels;

/// Source indices of PyTorch's `F.interpolate(mode='nearest')` along one axis when resizing
/// `input` samples to `output`: `min(floor(dst · (input / output)), input − 1)` with the scale
/// and the product in f32, as ATen's `nearest_idx` computes them.
pub fn nearest_indices(input: usize, output: usize) -> Vec<usize> {
    if input == output {
        return (0..output).collect();
    }
    if output == 2 * input {
        return (0..output).map(|o| o >> 1).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output).map(|o| ((o as f32 * scale).floor() as usize).min(input - 1)).collect()
}

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

/// `F.interpolate(x, [h, w], mode='nearest')` as two index gathers.
pub fn resize_nearest(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [_, _, ih, iw] = x.dims();
    if ih == h && iw == w {
        return x;
    }
    if let Some(y) = resize_nearest_kernel(&x, h, w, None) {
        return y;
    }
    let device = x.device();
    let x = if ih == h { x } else { x.select(2, index_tensor(&nearest_indices(ih, h), &device)) };
    if iw == w { x } else { x.select(3, index_tensor(&nearest_indices(iw, w), &device)) }
}

/// `resize_nearest(x, h, w) + residual`, in one pass on the CPU when the tensors allow it.
pub fn resize_nearest_add(x: Tensor<4>, h: usize, w: usize, residual: Tensor<4>) -> Tensor<4> {
    if let Some(y) = resize_nearest_kernel(&x, h, w, Some(&residual)) {
        return y;
    }
    resize_nearest(x, h, w) + residual
}

/// [`resize_nearest`] (plus `residual`) as one gather on plain `flex` tensors, else `None`.
fn resize_nearest_kernel(x: &Tensor<4>, h: usize, w: usize, residual: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    let [b, c, ih, iw] = x.dims();
    if residual.is_some_and(|r| r.dims() != [b, c, h, w]) {
        return None;
    }
    let xh = kernels::host(x)?;
    let rh = kernels::host_maybe(residual)?;
    let (rows, cols) = (nearest_indices(ih, h), nearest_indices(iw, w));
    let out =
        kernels::gather_rows_cols_add(kernels::values(&xh), x.dims(), &rows, &cols, rh.as_ref().map(kernels::values));
    Some(kernels::from_host(out, [b, c, h, w]))
}

/// `softmax(scores, -1).mean(1)` of `B×L×S` scores: `B×1×S`, in one pass on the CPU
/// (`kernels::softmax_mean_rows`) when the tensor allows it.
pub fn softmax_mean_rows(scores: Tensor<3>) -> Tensor<3> {
    if let Some(h) = kernels::host(&scores) {
        let [b, _, s] = scores.dims();
        return kernels::from_host(kernels::softmax_mean_rows(kernels::values(&h), scores.dims()), [b, 1, s]);
    }
    activation::softmax(scores, 2).mean_dim(1)
}

/// `F.normalize(x, p=1, dim=-1)`: x / max(Σ|x|, 1e-12) along the last dimension.
pub fn l1_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let n = x.clone().abs().sum_dim(D - 1).clamp_min(1e-12);
    x / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_indices_follow_aten() {
        // Hand-computed floor(dst · in/out) with the scale in f32.
        assert_eq!(nearest_indices(5, 3), vec![0, 1, 3]); // scale 5/3: 0, 1.67, 3.33
        assert_eq!(nearest_indices(3, 5), vec![0, 0, 1, 1, 2]); // scale 0.6: 0, .6, 1.2, 1.8, 2.4
        assert_eq!(nearest_indices(4, 4), vec![0, 1, 2, 3]);
        assert_eq!(nearest_indices(3, 6), vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(nearest_indices(7, 3), vec![0, 2, 4]); // scale 2.33: 0, 2.33, 4.67
        assert_eq!(nearest_indices(70, 288)[287], 69);
        assert_eq!(nearest_indices(3, 7), vec![0, 0, 0, 1, 1, 2, 2]); // scale 0.42857143
        // f32 rounding matters: 14 → 46 has scale 0.30434781 (just below 14/46), so dst 23
        // gives 6.9999995 and source 6, where exact arithmetic (23·14/46 = 7) would give 7.
        let idx = nearest_indices(14, 46);
        assert_eq!((idx[22], idx[23], idx[24]), (6, 6, 7));
        // And when shrinking: 26 → 22 at dst 11 gives 12.999999 → 12 (exact: 13).
        assert_eq!(nearest_indices(26, 22)[11], 12);
    }

    #[test]
    fn resize_nearest_gathers_rows_and_columns() {
        let dev = crate::cpu();
        let data: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [1, 1, 3, 5]), &dev);
        let y = crate::weights::tensor_to_vec(resize_nearest(x, 5, 3));
        // rows [0,0,1,1,2] of a 3×5 grid, columns [0,1,3]
        let want = [0., 1., 3., 0., 1., 3., 5., 6., 8., 5., 6., 8., 10., 11., 13.];
        assert_eq!(y, want);
        // The differentiable path (index selects) gathers the same values.
        let x = Tensor::<4>::from_data(TensorData::new((0..15).map(|v| v as f32).collect(), [1, 1, 3, 5]), &dev);
        assert_eq!(crate::weights::tensor_to_vec(resize_nearest(x.clone().autodiff(), 5, 3)), want);
        // With a residual added in the same pass.
        let r = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 15], [1, 1, 5, 3]), &dev);
        let got = crate::weights::tensor_to_vec(resize_nearest_add(x, 5, 3, r));
        assert_eq!(got, want.iter().map(|v| v + 0.5).collect::<Vec<f32>>());
    }
}
