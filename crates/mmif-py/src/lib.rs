//! `_mmif_fusion`: the native module of the `mmif-fusion` Python package (imported as
//! `mmif_fusion`, whose `__init__.py` adds the pure-Python `Evaluator` and `fuse`).
//!
//! Everything runs through the same code as the `mmif` binary: models are built and run by
//! `mmif_fuse` (its registry, `models::build`, `pipeline::fuse_loaded`), arrays become sources
//! with `mmif_io`'s reading conventions, metrics come from `mmif_metrics::compute`. So a fused
//! array equals `mmif fuse … -o out.npy` (float32) or its `.png` (uint8) bit for bit, and a metric
//! equals `mmif eval`.
//!
//! Heavy calls (loading a checkpoint, fusing, scoring) run with the GIL released; errors are
//! Python exceptions (`TypeError` for a wrong dtype, `ValueError` for a wrong shape, `MmifError`,
//! a `ValueError`, with the CLI's message for everything else); a panic inside mmif is caught and
//! reported as `MmifError`, never unwound into Python.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use image::{DynamicImage, ImageBuffer};
use mmif_fuse::pipeline::{self, ColorMode, Conventions, Fused};
use mmif_fuse::text::TextFeatures;
use mmif_fuse::{Model, ModelOptions, Task};
use mmif_io::{Loaded, Plane};
use mmif_metrics::{Gray, Image, Metric, Options, Preset};
use numpy::prelude::*;
use numpy::{PyArray1, PyReadonlyArrayDyn};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    _mmif_fusion,
    MmifError,
    PyValueError,
    "An error reported by mmif (the message is the one the `mmif` command prints)."
);

fn mmif_err(e: anyhow::Error) -> PyErr {
    MmifError::new_err(format!("{e:#}"))
}

/// Runs `f` with the GIL released; an error or a panic becomes `MmifError`.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match result {
        Ok(r) => r.map_err(mmif_err),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(MmifError::new_err(format!("internal error in mmif (please report it): {msg}")))
        }
    }
}

/// An array's values in C order with its shape, for the dtypes mmif reads.
enum Pixels {
    U8(Vec<usize>, Vec<u8>),
    U16(Vec<usize>, Vec<u16>),
    F32(Vec<usize>, Vec<f32>),
}

fn dtype_name(obj: &Bound<'_, PyAny>) -> String {
    obj.getattr("dtype").and_then(|d| d.str()).map(|s| s.to_string()).unwrap_or_else(|_| "?".into())
}

fn pixels(obj: &Bound<'_, PyAny>, name: &str, float64: bool) -> PyResult<Pixels> {
    // A C-contiguous array is one copy of its buffer; other layouts (views, transposes) go
    // through ndarray's iterator, which is several times slower per element.
    fn take<T: numpy::Element + Copy>(a: PyReadonlyArrayDyn<'_, T>) -> (Vec<usize>, Vec<T>) {
        let data = match a.as_slice() {
            Ok(s) => s.to_vec(),
            Err(_) => a.as_array().iter().copied().collect(),
        };
        (a.shape().to_vec(), data)
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        let (s, v) = take(a);
        return Ok(Pixels::U8(s, v));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, u16>>() {
        let (s, v) = take(a);
        return Ok(Pixels::U16(s, v));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        let (s, v) = take(a);
        return Ok(Pixels::F32(s, v));
    }
    if float64 && let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        let (s, v) = take(a);
        return Ok(Pixels::F32(s, v.into_iter().map(|x| x as f32).collect()));
    }
    let accepted = if float64 { "uint8, uint16, float32 or float64" } else { "uint8, uint16 or float32" };
    if obj.hasattr("dtype")? && obj.hasattr("shape")? {
        Err(PyTypeError::new_err(format!(
            "{name}: arrays of dtype {} are not supported: pass {accepted} (e.g. {name}.astype(np.float32))",
            dtype_name(obj)
        )))
    } else {
        Err(PyTypeError::new_err(format!(
            "{name}: expected a numpy array ({accepted}), got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        )))
    }
}

impl Pixels {
    fn shape(&self) -> &[usize] {
        match self {
            Pixels::U8(s, _) | Pixels::U16(s, _) | Pixels::F32(s, _) => s,
        }
    }

    /// `(height, width, channels)` of an H×W, H×W×1, H×W×3 (RGB) or H×W×4 (RGBA) array.
    fn dims(&self, name: &str) -> PyResult<(usize, usize, usize)> {
        let (h, w, c) = match *self.shape() {
            [h, w] => (h, w, 1),
            [h, w, c @ (1 | 3 | 4)] => (h, w, c),
            ref s => {
                return Err(PyValueError::new_err(format!(
                    "{name}: expected an image of shape H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA), got shape {s:?}"
                )));
            }
        };
        if h == 0 || w == 0 {
            return Err(PyValueError::new_err(format!("{name}: the image is empty (shape {:?})", self.shape())));
        }
        Ok((h, w, c))
    }

    /// The source as `mmif fuse` reads a file with these pixels: 8-bit gray rounded as the
    /// official reading, 16-bit scaled to 0..=255, float32 in [0, 1] (×255, not rounded; an
    /// H×W float32 array is what a `.npy` input holds), and the chroma of a colour image.
    fn loaded(self, name: &str) -> PyResult<Loaded> {
        Ok(self.source(name, false)?.0)
    }

    /// [`Pixels::loaded`], and with `rgb` for a colour image also its R, G and B planes as
    /// `mmif fuse --color channels` takes them from a file with these pixels.
    fn source(self, name: &str, rgb: bool) -> PyResult<(Loaded, Option<[Plane; 3]>)> {
        let (h, w, c) = self.dims(name)?;
        let (w32, h32) = match (u32::try_from(w), u32::try_from(h)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(PyValueError::new_err(format!("{name}: the image is too large ({w}x{h})"))),
        };
        let bad = || PyValueError::new_err(format!("{name}: the array does not match its shape"));
        let img = match self {
            Pixels::U8(_, v) => match c {
                1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
            },
            Pixels::U16(_, v) => match c {
                1 => DynamicImage::ImageLuma16(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                3 => DynamicImage::ImageRgb16(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                _ => DynamicImage::ImageRgba16(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
            },
            Pixels::F32(_, v) => {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(PyValueError::new_err(format!("{name}: non-finite value at flat index {i}")));
                }
                match c {
                    1 => return Ok((mmif_io::image_io::from_unit_gray(Plane::new(w, h, v)), None)),
                    3 => DynamicImage::ImageRgb32F(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                    _ => DynamicImage::ImageRgba32F(ImageBuffer::from_raw(w32, h32, v).ok_or_else(bad)?),
                }
            }
        };
        let planes = (rgb && c > 1).then(|| pipeline::rgb_planes(&img));
        Ok((mmif_io::image_io::from_pixels(img), planes))
    }

    /// A gray image on the 0..=255 scale for the evaluator's metrics (float arrays taken as
    /// they are, as the official `Evaluator` takes `image_read_cv2`'s float32 arrays).
    fn gray(self, name: &str) -> PyResult<Plane> {
        let (h, w, c) = self.dims(name)?;
        if c != 1 {
            return Err(PyValueError::new_err(format!(
                "{name}: the evaluator's metrics take gray H×W images (read them as image_read_cv2(path, 'GRAY') \
                 does), got shape {:?}",
                self.shape()
            )));
        }
        let data = match self {
            Pixels::U8(_, v) => v.into_iter().map(f32::from).collect(),
            Pixels::U16(_, v) => v.into_iter().map(f32::from).collect(),
            Pixels::F32(_, v) => v,
        };
        Ok(Plane::new(w, h, data))
    }
}

fn opt_parse<T: std::str::FromStr<Err = E>, E: std::fmt::Display>(v: Option<&str>) -> PyResult<Option<T>> {
    v.map(|s| s.parse::<T>().map_err(|e| PyValueError::new_err(e.to_string()))).transpose()
}

fn parse_task(task: Option<&str>) -> PyResult<Task> {
    Ok(opt_parse::<Task, _>(task)?.unwrap_or(Task::Generic))
}

/// A model loaded once, then fusing many pairs (the official checkpoints load as they are:
/// `.pth`, Jittor `.pkl`, `.safetensors`).
#[pyclass(frozen, module = "mmif_fusion")]
struct Fuser {
    inner: Box<dyn mmif_fuse::Fuser>,
    model: Model,
    task: Task,
    conv: Conventions,
}

#[pymethods]
impl Fuser {
    #[new]
    #[pyo3(signature = (model=None, weights=None, *, task=None, raw=false, gray=false, color=None, residual=None, tiling=None, tile=None, overlap=None, bands=None, weight=None, levels=None, **params))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        model: Option<&str>,
        weights: Option<PathBuf>,
        task: Option<&str>,
        raw: bool,
        gray: bool,
        color: Option<&str>,
        residual: Option<&str>,
        tiling: Option<&str>,
        tile: Option<usize>,
        overlap: Option<usize>,
        bands: Option<&str>,
        weight: Option<f32>,
        levels: Option<usize>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let task = parse_task(task)?;
        let conv = Conventions { raw, gray, color: opt_parse(color)?.unwrap_or_default() };
        let model = match model {
            Some(name) => Model::parse(name).map_err(|e| {
                let names = Model::names().join(", ");
                PyValueError::new_err(match e {
                    mmif_fuse::registry::ModelNameError::Unknown => {
                        format!("unknown model `{name}`: expected one of {names}")
                    }
                    mmif_fuse::registry::ModelNameError::NetworkWithParameter => {
                        format!("`{name}`: only weight-free methods take a `:parameter`")
                    }
                })
            })?,
            None if weights.is_some() => {
                return Err(MmifError::new_err(format!(
                    "weights {} given without a model: name the network (e.g. model=\"cddfuse\")",
                    weights.as_ref().map(|w| w.display().to_string()).unwrap_or_default()
                )));
            }
            None => pipeline::default_model(task),
        };
        conv.check(&model).map_err(mmif_err)?;
        let mut kv = Vec::new();
        if let Some(d) = params {
            for (k, v) in d.iter() {
                kv.push(format!("{}={}", k.str()?, v.str()?));
            }
        }
        let tiling = pipeline::tiling(opt_parse(tiling)?, tile, overlap).map_err(mmif_err)?;
        let opts = ModelOptions {
            residual: opt_parse(residual)?,
            weight,
            levels,
            tiling,
            params: kv,
            bands: opt_parse(bands)?,
        };
        let m = model.clone();
        let inner = detached(py, move || mmif_fuse::models::build(&m, weights.as_deref(), &opts, &mmif_nn::cpu()))?;
        Ok(Fuser { inner, model, task, conv })
    }

    /// Fuses `a` (infrared, MRI, over-exposed, near-focused) and `b` (visible, CT/PET/SPECT,
    /// under-exposed, far-focused): float32 in [0, 1] (H×W, or H×W×3 when a source is in colour),
    /// or uint8 as `mmif fuse` writes a PNG. A network first checks its estimated peak memory for
    /// the pair's size against the memory available and raises `MmifError` naming the option that
    /// bounds it (`memory_check=False` runs anyway), as `mmif fuse` does.
    #[pyo3(signature = (a, b, *, text=None, dtype="float32", memory_check=true))]
    fn fuse<'py>(
        &self,
        py: Python<'py>,
        a: &Bound<'py, PyAny>,
        b: &Bound<'py, PyAny>,
        text: Option<&Bound<'py, PyAny>>,
        dtype: &str,
        memory_check: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let as_u8 = match dtype {
            "float32" => false,
            "uint8" => true,
            other => {
                return Err(PyValueError::new_err(format!("dtype must be \"float32\" or \"uint8\", got {other:?}")));
            }
        };
        let (na, nb) = self.task.names();
        let channels = self.conv.color == ColorMode::Channels;
        let (la, ra) = pixels(a, na, false)?.source(na, channels)?;
        let (lb, rb) = pixels(b, nb, false)?.source(nb, channels)?;
        pipeline::check_same_size(na, &la.gray, nb, &lb.gray).map_err(mmif_err)?;
        let (name, size) = (self.model.to_string(), (la.gray.width, la.gray.height));
        pipeline::check_memory(self.inner.as_ref(), &name, size, memory_check, "pass memory_check=False")
            .map_err(mmif_err)?;
        let text = match text {
            None => None,
            Some(t) => match pixels(t, "text", false)? {
                Pixels::F32(shape, data) => Some(TextFeatures::new(&shape, data, "text").map_err(mmif_err)?),
                _ => return Err(PyTypeError::new_err("text: text features are float32 (T×768 or 1×T×768)")),
            },
        };
        let (task, conv, inner) = (self.task, self.conv, &self.inner);
        let fused: Fused = detached(py, || {
            if conv.by_channels(&la, &lb) {
                let no_rgb = || anyhow::anyhow!("no RGB planes of a colour source");
                let ca = pipeline::source_channels(&la, || ra.ok_or_else(no_rgb))?;
                let cb = pipeline::source_channels(&lb, || rb.ok_or_else(no_rgb))?;
                return pipeline::fuse_channels(inner.as_ref(), task, &ca, &cb);
            }
            pipeline::fuse_loaded(inner.as_ref(), task, &la, &lb, text.as_ref(), conv)
        })?;
        to_array(py, &fused, as_u8)
    }

    /// The model's name.
    #[getter]
    fn model(&self) -> String {
        self.model.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Fuser(model={:?}, task={:?})", self.model.to_string(), self.task.names())
    }
}

/// The fused image as `mmif fuse` writes it: `.npy` values (float32) or `.png` bytes (uint8).
fn to_array<'py>(py: Python<'py>, fused: &Fused, as_u8: bool) -> PyResult<Bound<'py, PyAny>> {
    let (h, w) = (fused.y.height, fused.y.width);
    let q = |v: f32| mmif_io::image_io::quantize_u8(v, fused.quantize);
    let interleave = |rgb: &[Plane; 3]| -> Vec<f32> {
        (0..rgb[0].data.len()).flat_map(|i| rgb.iter().map(move |c| c.data[i])).collect()
    };
    Ok(match (fused.rgb255(), as_u8) {
        (None, false) => PyArray1::from_vec(py, fused.y.data.clone()).reshape([h, w])?.into_any(),
        (None, true) => {
            let y = fused.y.clone().scale(255.0);
            PyArray1::from_vec(py, y.data.iter().map(|&v| q(v)).collect()).reshape([h, w])?.into_any()
        }
        (Some(rgb), false) => {
            let rgb = rgb.map(|p| p.scale(1.0 / 255.0));
            PyArray1::from_vec(py, interleave(&rgb)).reshape([h, w, 3])?.into_any()
        }
        (Some(rgb), true) => {
            let v: Vec<u8> = interleave(&rgb).into_iter().map(q).collect();
            PyArray1::from_vec(py, v).reshape([h, w, 3])?.into_any()
        }
    })
}

fn parse_metric(name: &str) -> PyResult<Metric> {
    name.parse::<Metric>().map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The metrics and options of a preset and/or a list, as `mmif eval` resolves them.
fn selection(
    preset: Option<&str>,
    metrics: Option<Vec<String>>,
    ssim_data_range: Option<f64>,
) -> PyResult<(Vec<Metric>, Options)> {
    let preset: Option<Preset> = opt_parse(preset)?;
    let list = metrics.map(|l| l.iter().map(|m| parse_metric(m)).collect::<PyResult<Vec<_>>>()).transpose()?;
    let chosen = match (&list, preset) {
        (Some(l), _) => l.clone(),
        (None, p) => p.unwrap_or(Preset::Cddfuse).metrics().to_vec(),
    };
    let mut opts = match (preset, &list) {
        (Some(p), _) => p.options(),
        (None, None) => Preset::Cddfuse.options(),
        (None, Some(_)) => Options::default(),
    };
    if let Some(r) = ssim_data_range {
        if !(r.is_finite() && r > 0.0) {
            return Err(PyValueError::new_err(format!("ssim_data_range must be a positive number, got {r}")));
        }
        opts.ssim_data_range = r;
    }
    Ok((chosen, opts))
}

/// 8-bit pixels: width, height, channels, values.
type Bytes = (usize, usize, usize, Vec<u8>);

/// Three images for the metrics: gray planes, and 8-bit pixels when all are `uint8` (the MATLAB
/// toolkits' metrics read colour images as `imread` returns them).
struct Triple {
    planes: Option<[Plane; 3]>,
    bytes: Option<[Bytes; 3]>,
}

fn triple(fused: &Bound<'_, PyAny>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, toolkit: bool) -> PyResult<Triple> {
    let px = [pixels(fused, "fused", true)?, pixels(a, "a", true)?, pixels(b, "b", true)?];
    let names = ["fused", "a", "b"];
    let bytes = if toolkit && px.iter().all(|p| matches!(p, Pixels::U8(..))) {
        let mut out = Vec::new();
        for (p, n) in px.iter().zip(names) {
            let (h, w, c) = p.dims(n)?;
            if c == 4 {
                return Err(PyValueError::new_err(format!("{n}: RGBA images are not read by the metrics; pass RGB")));
            }
            let Pixels::U8(_, v) = p else { unreachable!("checked above") };
            out.push((w, h, c, v.clone()));
        }
        out.try_into().ok()
    } else {
        None
    };
    let all_gray = px.iter().zip(names).all(|(p, n)| p.dims(n).is_ok_and(|d| d.2 == 1));
    let planes = if all_gray || bytes.is_none() {
        let [f, x, y] = px;
        Some([f.gray("fused")?, x.gray("a")?, y.gray("b")?])
    } else {
        None
    };
    Ok(Triple { planes, bytes })
}

fn image(b: &Bytes) -> Result<Image<'_>, mmif_metrics::MetricError> {
    Image::new(b.0, b.1, b.2, &b.3)
}

fn gray_of(p: &Plane) -> Result<Gray<'_>, mmif_metrics::MetricError> {
    Gray::new(p.width, p.height, &p.data)
}

fn score(metrics: &[Metric], t: &Triple, opts: &Options) -> anyhow::Result<Vec<f64>> {
    metrics
        .iter()
        .map(|&m| match (&t.bytes, &t.planes) {
            (Some(bs), _) if m.is_toolkit() => {
                Ok(mmif_metrics::compute_image(m, image(&bs[0])?, image(&bs[1])?, image(&bs[2])?, opts)?)
            }
            (_, Some([f, a, b])) => Ok(mmif_metrics::compute(m, gray_of(f)?, gray_of(a)?, gray_of(b)?, opts)?),
            _ => anyhow::bail!("{m}: the evaluator's metrics take gray images"),
        })
        .collect()
}

/// `metric(name, fused, a, b, *, ssim_data_range=None)`: one metric of `mmif eval` (any name of
/// `list_metrics()`); `a` is the infrared / MRI / over / near source, `b` the other.
#[pyfunction]
#[pyo3(signature = (name, fused, a, b, *, ssim_data_range=None))]
fn metric(
    py: Python<'_>,
    name: &str,
    fused: &Bound<'_, PyAny>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    ssim_data_range: Option<f64>,
) -> PyResult<f64> {
    let m = parse_metric(name)?;
    let (_, opts) = selection(None, Some(vec![name.to_string()]), ssim_data_range)?;
    let t = triple(fused, a, b, m.is_toolkit())?;
    Ok(detached(py, || score(&[m], &t, &opts))?[0])
}

/// `evaluate(ir, vis, fused, *, preset="cddfuse", metrics=None, ssim_data_range=None)`: the
/// metrics of `mmif eval` on arrays, as an ordered dict `{name: value}`.
#[pyfunction]
#[pyo3(signature = (a, b, fused, *, preset=None, metrics=None, ssim_data_range=None))]
fn evaluate<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    fused: &Bound<'py, PyAny>,
    preset: Option<&str>,
    metrics: Option<Vec<String>>,
    ssim_data_range: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let (list, opts) = selection(preset, metrics, ssim_data_range)?;
    let t = triple(fused, a, b, list.iter().any(|m| m.is_toolkit()))?;
    let values = detached(py, || score(&list, &t, &opts))?;
    let out = PyDict::new(py);
    for (m, v) in list.iter().zip(values) {
        out.set_item(m.name(), v)?;
    }
    Ok(out)
}

/// Every metric name `metric`/`evaluate` accept, in `mmif eval --list-metrics` order.
#[pyfunction]
fn list_metrics() -> Vec<&'static str> {
    Metric::ALL.iter().map(|m| m.name()).collect()
}

/// The metrics of a preset (`cddfuse`, `film`, `vifb`), in its table order.
#[pyfunction]
fn preset_metrics(preset: &str) -> PyResult<Vec<&'static str>> {
    let p: Preset = preset.parse().map_err(|e: mmif_metrics::MetricError| PyValueError::new_err(e.to_string()))?;
    Ok(p.metrics().iter().map(|m| m.name()).collect())
}

/// `gray(image)`: an image array read as `mmif eval` and the official scripts read files
/// (`image_read_cv2(path, 'GRAY')`: OpenCV's BGR→gray on float32, rounded for 8-bit images), as
/// float32 on the 0..=255 scale. RGB arrays are in RGB order (as PIL and imageio give them).
#[pyfunction]
fn gray<'py>(py: Python<'py>, image: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let loaded = pixels(image, "image", false)?.loaded("image")?;
    let (h, w) = (loaded.gray.height, loaded.gray.width);
    Ok(PyArray1::from_vec(py, loaded.gray.data).reshape([h, w])?.into_any())
}

/// Every model name `Fuser`/`fuse` accept: the networks, then the weight-free methods.
#[pyfunction]
fn list_models() -> Vec<&'static str> {
    Model::names()
}

#[pymodule]
fn _mmif_fusion(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MmifError", m.py().get_type::<MmifError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Fuser>()?;
    m.add_function(wrap_pyfunction!(metric, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(list_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(preset_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(list_models, m)?)?;
    m.add_function(wrap_pyfunction!(gray, m)?)?;
    Ok(())
}
