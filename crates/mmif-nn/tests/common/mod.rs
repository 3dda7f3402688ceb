//! Helpers of the parity tests: tensors from fixtures (closeness checks from `mmif_testkit`).
#![allow(dead_code, unused_imports)]

use mmif_nn::{Device, Tensor};
pub use mmif_testkit::compare::{assert_close, assert_close_rel, max_abs_diff};
pub use mmif_testkit::fixtures;

/// The device under test (`$MMIF_TEST_DEVICE`, default `cpu`).
pub fn device() -> Device {
    let name = mmif_testkit::device_name();
    mmif_nn::device::parse_device(&name).unwrap_or_else(|e| panic!("MMIF_TEST_DEVICE={name}: {e}"))
}

/// An expected-output fixture as `(shape, values)`.
pub fn expected(name: &str) -> (Vec<usize>, Vec<f32>) {
    fixtures::npy(&format!("{name}.npy"))
}

/// The `input_<kind>_*.npy` image of shape `hw` as a `1×1×H×W` tensor.
pub fn input(kind: &str, hw: &[usize], nth: usize) -> Tensor<4> {
    let (_, v) = fixtures::input(kind, hw, nth);
    Tensor::from_data(burn::tensor::TensorData::new(v, [1, 1, hw[0], hw[1]]), &device())
}

/// The values of the first `c` channels of the first image of a `B×C×H×W` tensor.
pub fn first_channels(t: Tensor<4>, c: usize) -> Vec<f32> {
    mmif_nn::weights::tensor_to_vec(t.narrow(0, 0, 1).narrow(1, 0, c))
}

pub fn values(t: Tensor<4>) -> Vec<f32> {
    mmif_nn::weights::tensor_to_vec(t)
}
