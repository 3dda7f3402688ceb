//! Image, `.npy` and checkpoint I/O for mmif. No tensor framework: plain `Vec<f32>`.
//!
//! * [`image_io`]: reading images the way the official scripts do (OpenCV BGR→GRAY on float32,
//!   rounded half to even), colour (YCrCb) split/merge, 8/16-bit and float32 writers.
//! * [`npy`]: float32 `.npy` read/write.
//! * [`checkpoint`]: PyTorch `.pth`, Jittor `.pkl`, pickles of NumPy arrays and safetensors, through
//!   a restricted unpickler that never executes anything.
//! * [`tensor_source`]: a few tensors out of a large checkpoint (memory-mapped safetensors, Hugging
//!   Face shard indexes) without reading the rest.
//! * [`dataset`]: the `.mmifds` training dataset (`mmif prepare` writes it, `mmif train` reads it).
//! * [`fill`]: the fixtures' deterministic parameter fill.
//! * [`limits`]: the pixel limit every reader checks against the declared size before allocating.
//!
//! Every writer is atomic (temporary file in the same directory, then rename); every reader
//! returns an [`Error`] naming the file on corrupt or truncated input, never panics.

mod atomic;
pub mod checkpoint;
pub mod dataset;
mod error;
pub mod fill;
pub mod fixtures;
pub mod image_io;
mod jpeg;
pub mod limits;
pub mod npy;
mod pickle;
mod plane;
pub mod tensor;
pub mod tensor_source;

pub use atomic::{remove_stale_temps, write_atomic};
pub use checkpoint::{
    Checkpoint, CheckpointFormat, SaveValue, load_checkpoint, load_checkpoint_bytes, save_jittor_pkl, save_pth,
    save_safetensors,
};
pub use error::{Error, Result};
pub use fill::{Manifest, fill_value, uniform_pm1};
pub use image_io::{
    Chroma, Loaded, OutputImage, Quantize, compose_color, read_gray, read_image, write_output, write_png_rgb8,
    write_png8, write_tiff16,
};
pub use limits::{DEFAULT_MAX_PIXELS, Limits, set_max_pixels};
pub use npy::{read_npy_f32, write_npy, write_npy_f32};
pub use plane::Plane;
pub use tensor::{DType, TensorData};
pub use tensor_source::TensorSource;
