//! Checkpoint formats: PyTorch `.pth` (zip), Jittor `.pkl`, bare pickles of NumPy arrays, and
//! safetensors — read with one entry point, [`load_checkpoint`], that detects the format by content.
//!
//! * **PyTorch** (`torch.save`, zip since torch 1.6): `<root>/data.pkl` + `<root>/data/<key>`
//!   storages + `<root>/byteorder`, any root name. The pickle is interpreted by this crate's
//!   restricted unpickler (no Python code is ever executed, no dependency on a tensor framework);
//!   strided/offset views are materialised row-major.
//! * **Jittor** (`jt.save`): a pickle followed by the 20-byte SHA-1 of the pickle and the 8 bytes
//!   `HCAJSLHD`; the checksum is verified first. Arrays are NumPy arrays wrapped in `jittor.Var`
//!   (NumPy 1.x `numpy.core.multiarray` and 2.x `numpy._core.multiarray` names both accepted).
//! * **Pickle** of NumPy arrays without the Jittor trailer.
//! * **safetensors**.
//!
//! Nested dicts are flattened with `.` (`DIDF_Encoder.module.patch_embed.proj.weight`,
//! `optimizer1.state.0.exp_avg`); lists/tuples containing tensors or dicts are flattened by index.
//! Non-tensor leaves (epoch, step, learning rates, …) go to [`Checkpoint::scalars`] as JSON.
//!
//! Writers ([`save_pth`], [`save_jittor_pkl`], [`save_safetensors`]) are atomic.

use crate::atomic::write_atomic;
use crate::pickle::{Global, PickleError, Storage, Unpickler, Value, Writer};
use crate::tensor::{DType, TensorData, c_strides};
use crate::{Error, Result};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read, Seek, Write};
use std::path::Path;
use std::rc::Rc;

/// The 8 bytes that end a Jittor `.pkl` (after the 20-byte SHA-1 of the pickle).
pub const JITTOR_MAGIC: &[u8; 8] = b"HCAJSLHD";

/// Deepest dict/list nesting accepted when flattening.
const MAX_DEPTH: usize = 64;

/// The detected container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// PyTorch zip checkpoint.
    Pth,
    /// Jittor pickle with SHA-1 trailer.
    Jittor,
    /// Plain pickle (protocol ≥ 2) of NumPy arrays.
    Pickle,
    Safetensors,
}

/// A loaded checkpoint: every tensor by flattened name, plus the non-tensor leaves.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub format: CheckpointFormat,
    /// Tensors by flattened name, values converted to `f32`.
    pub tensors: BTreeMap<String, TensorData>,
    /// Non-tensor leaves by flattened name (`epoch`, `step`, `optimizer1.param_groups.0.lr`, …).
    pub scalars: BTreeMap<String, serde_json::Value>,
    /// Tensor names in the order the file stores them.
    pub order: Vec<String>,
    groups: Vec<String>,
}

fn strip_module(s: &str) -> &str {
    s.strip_prefix("module.").unwrap_or(s)
}

impl Checkpoint {
    /// The tensors under `prefix.` with the prefix and a leading `module.` (DataParallel) removed;
    /// `None` (or `Some("")`) gives every tensor with a leading `module.` removed.
    pub fn group(&self, prefix: Option<&str>) -> BTreeMap<String, TensorData> {
        let mut out = BTreeMap::new();
        for (name, t) in &self.tensors {
            let rest = match prefix {
                None | Some("") => Some(name.as_str()),
                Some(p) => name.strip_prefix(p).and_then(|r| r.strip_prefix('.')),
            };
            if let Some(rest) = rest {
                out.insert(strip_module(rest).to_string(), t.clone());
            }
        }
        out
    }

    /// Top-level groups that hold tensors, in file order: each top-level key whose value is a dict
    /// (or list) containing tensors (`model`, `optimizer1`, or CDDFuse's `DIDF_Encoder`, …), and
    /// `""` if the top level itself holds tensors (a plain state dict, safetensors).
    pub fn state_dict_candidates(&self) -> &[String] {
        &self.groups
    }

    /// The most plausible model state dict (with `module.` stripped): the top-level tensors if the
    /// file is a plain state dict; else the first of `model`, `state_dict`, `net`, `params`,
    /// `model_state_dict` present; else the only group. `None` if ambiguous.
    pub fn default_state_dict(&self) -> Option<BTreeMap<String, TensorData>> {
        if self.groups.iter().any(|g| g.is_empty()) {
            return Some(self.group(None));
        }
        for k in ["model", "state_dict", "net", "params", "model_state_dict"] {
            if self.groups.iter().any(|g| g == k) {
                return Some(self.group(Some(k)));
            }
        }
        match self.groups.as_slice() {
            [only] => Some(self.group(Some(only))),
            _ => None,
        }
    }
}

/// Loads a checkpoint, detecting the format by content (see the module documentation).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_checkpoint_bytes(&bytes, path)
}

/// Loads a checkpoint from memory; `path` is only used in error messages and for the extension hint.
pub fn load_checkpoint_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    if bytes.is_empty() {
        return Err(Error::format(path, "empty file, not a checkpoint"));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return load_pth(bytes, path);
    }
    if bytes.len() >= 28 && bytes.ends_with(JITTOR_MAGIC) {
        return load_jittor(bytes, path);
    }
    if is_safetensors(bytes) {
        return load_safetensors(bytes, path);
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if matches!(ext.as_str(), "pth" | "pt" | "tar" | "ckpt") && bytes[0] != 0x80 {
        return Err(Error::format(
            path,
            "not a PyTorch checkpoint: no zip signature (truncated, corrupt, or not a torch.save file)",
        ));
    }
    if bytes[0] == 0x80 {
        let (v, _cycles) = unpickle(bytes, path, None)?;
        return from_value(v, CheckpointFormat::Pickle, path);
    }
    Err(Error::format(
        path,
        "unrecognised checkpoint format (expected a PyTorch zip .pth, a Jittor .pkl, a pickle or safetensors)",
    ))
}

/// One tensor of a safetensors file as `f32` values.
pub(crate) fn safetensors_view(
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
    path: &Path,
) -> Result<TensorData> {
    safetensors_values(name, view.dtype(), view.shape(), view.data(), path)
}

/// The `f32` values of a safetensors tensor from its dtype, shape and bytes.
pub(crate) fn safetensors_values(
    name: &str,
    dtype: safetensors::Dtype,
    shape: &[usize],
    bytes: &[u8],
    path: &Path,
) -> Result<TensorData> {
    use safetensors::Dtype;
    let dtype = match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        d => {
            return Err(Error::unsupported(path, format!("tensor '{name}' has unsupported dtype {d:?}")));
        }
    };
    let shape = shape.to_vec();
    let data = crate::tensor::materialize(bytes, dtype, false, 0, &shape, &c_strides(&shape))
        .map_err(|m| Error::format(path, format!("tensor '{name}': {m}")))?;
    Ok(TensorData { shape, dtype, data })
}

pub(crate) fn is_safetensors(b: &[u8]) -> bool {
    if b.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    b[8] == b'{' && n >= 2 && n <= (b.len() - 8) as u64
}

/// The unpickled value and the containers that must be dropped after it (see
/// [`crate::pickle::Containers`]: they break the reference cycles a crafted pickle can build).
fn unpickle(
    bytes: &[u8],
    path: &Path,
    persistent: Option<crate::pickle::PersistentLoad<'_>>,
) -> Result<(Value, crate::pickle::Containers)> {
    Unpickler::new(bytes, persistent).load().map_err(|e| match e {
        PickleError::Forbidden(global) => Error::ForbiddenGlobal { path: path.to_owned(), global },
        PickleError::Msg(m) => Error::format(path, format!("bad pickle: {m}")),
    })
}

/// How many times its own size a zipped checkpoint's entries may expand to (a budget for all
/// entries read), and the smallest such budget.
const ZIP_EXPANSION: u64 = 16;
const ZIP_MIN_BUDGET: u64 = 256 << 20;

/// A PyTorch zip checkpoint's archive: where its pickle is, and its entries read within the
/// expansion budget.
struct PthZip<R: Read + Seek> {
    zip: zip::ZipArchive<R>,
    /// The folder every entry is in (`archive/`, or the name the checkpoint was saved under).
    root: String,
    pkl_name: String,
    file_len: u64,
    /// Bytes the entries still read may expand to.
    budget: u64,
    big_endian: bool,
}

impl<R: Read + Seek> PthZip<R> {
    fn open(reader: R, file_len: u64, path: &Path) -> Result<Self> {
        let zip = zip::ZipArchive::new(reader).map_err(|e| {
            Error::format(path, format!("not a readable zip archive (truncated or corrupt PyTorch checkpoint): {e}"))
        })?;
        let pkl_name = zip
            .file_names()
            .filter(|n| n.ends_with("data.pkl"))
            .filter(|n| *n == "data.pkl" || (n.matches('/').count() == 1 && n.ends_with("/data.pkl")))
            .min_by_key(|n| n.len())
            .map(str::to_owned)
            .ok_or_else(|| Error::format(path, "zip archive has no data.pkl: not a PyTorch checkpoint"))?;
        let root = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
        // A zip entry may be compressed (PyTorch stores them uncompressed), so the bytes it
        // declares are not bounded by the file: a small deflated entry can expand a thousandfold.
        // The entries read may expand to at most `ZIP_EXPANSION` times the file (or
        // `ZIP_MIN_BUDGET`), checked against each entry's declared size before reading and
        // enforced while reading.
        let budget = file_len.saturating_mul(ZIP_EXPANSION).max(ZIP_MIN_BUDGET);
        let mut z = Self { zip, root, pkl_name, file_len, budget, big_endian: false };
        z.big_endian = match z.read(&format!("{}byteorder", z.root), path)? {
            None => false,
            Some(b) => match String::from_utf8_lossy(&b).trim() {
                "little" => false,
                "big" => true,
                o => return Err(Error::format(path, format!("unknown byteorder '{o}'"))),
            },
        };
        Ok(z)
    }

    /// The declared (uncompressed) size of entry `name`, `None` when there is none.
    fn size(&mut self, name: &str, path: &Path) -> Result<Option<u64>> {
        match self.zip.by_name(name) {
            Ok(f) => Ok(Some(f.size())),
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(Error::format(path, format!("cannot read '{name}' in the zip: {e}"))),
        }
    }

    /// Reads entry `name` (`None` when there is none).
    fn read(&mut self, name: &str, path: &Path) -> Result<Option<Vec<u8>>> {
        let f = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => {
                return Err(Error::format(path, format!("cannot read '{name}' in the zip: {e}")));
            }
        };
        let declared = f.size();
        if declared > self.budget {
            return Err(Error::format(
                path,
                format!(
                    "'{name}' in the zip declares {declared} bytes, more than a checkpoint of {} bytes can expand to",
                    self.file_len
                ),
            ));
        }
        let mut buf = Vec::new();
        f.take(declared)
            .read_to_end(&mut buf)
            .map_err(|e| Error::format(path, format!("cannot read '{name}' in the zip: {e}")))?;
        self.budget -= buf.len() as u64;
        Ok(Some(buf))
    }

    fn pickle(&mut self, path: &Path) -> Result<Vec<u8>> {
        let name = self.pkl_name.clone();
        Ok(self.read(&name, path)?.unwrap_or_default())
    }

    fn storage_name(&self, key: &str) -> String {
        format!("{}data/{key}", self.root)
    }
}

/// A torch storage's persistent id: `('storage', StorageType, key, location, numel)`.
fn storage_pid(pid: &Value) -> std::result::Result<(DType, String, usize), PickleError> {
    let items = pid.items().unwrap_or_default();
    match items.as_slice() {
        [Value::Str(tag), Value::Global(Global::StorageType(dt)), key, _location, numel] if &**tag == "storage" => {
            let key = match key {
                Value::Str(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                _ => return Err(PickleError::Msg("storage key is not a string".into())),
            };
            let numel = match numel {
                Value::Int(n) if *n >= 0 => *n as usize,
                _ => return Err(PickleError::Msg("storage size is not an int".into())),
            };
            Ok((*dt, key, numel))
        }
        _ => Err(PickleError::Msg("unsupported persistent id (expected a torch storage)".into())),
    }
}

fn storage_too_small(name: &str, have: u64, numel: usize, dtype: DType) -> Option<PickleError> {
    numel.checked_mul(dtype.size()).is_none_or(|n| n as u64 > have).then(|| {
        PickleError::Msg(format!("storage '{name}' holds {have} bytes, fewer than its {numel} {dtype:?} elements"))
    })
}

fn load_pth(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let mut z = PthZip::open(Cursor::new(bytes), bytes.len() as u64, path)?;
    let pkl = z.pickle(path)?;
    let mut cache: HashMap<String, Rc<Storage>> = HashMap::new();
    let mut storage_error: Option<Error> = None;
    let v = {
        let mut load = |pid: &Value| -> std::result::Result<Value, PickleError> {
            let (dtype, key, numel) = storage_pid(pid)?;
            if let Some(s) = cache.get(&key) {
                return Ok(Value::Storage(s.clone()));
            }
            let name = z.storage_name(&key);
            let bytes = match z.read(&name, path) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err(PickleError::Msg(format!("storage '{name}' is missing from the zip")));
                }
                Err(e) => {
                    let msg = e.to_string();
                    storage_error = Some(e);
                    return Err(PickleError::Msg(msg));
                }
            };
            if let Some(e) = storage_too_small(&name, bytes.len() as u64, numel, dtype) {
                return Err(e);
            }
            let s = Rc::new(Storage { dtype, bytes, big_endian: z.big_endian, lazy: None });
            cache.insert(key, s.clone());
            Ok(Value::Storage(s))
        };
        unpickle(&pkl, path, Some(&mut load))
    };
    if let Some(e) = storage_error {
        return Err(e);
    }
    let (v, _cycles) = v?;
    from_value(v, CheckpointFormat::Pth, path)
}

/// One tensor of a [`LazyPth`]: its storage's key and its view of it.
#[derive(Clone, Debug)]
pub(crate) struct PthTensor {
    key: String,
    dtype: DType,
    big_endian: bool,
    offset: usize,
    pub size: Vec<usize>,
    stride: Vec<usize>,
}

/// A PyTorch zip checkpoint whose tensors are read one at a time: the pickle is read when it is
/// opened (names, shapes, storage keys), a tensor's storage entry when the tensor is read, so the
/// memory a reader needs is that of the tensors it takes, not of the file.
pub(crate) struct LazyPth {
    zip: PthZip<std::fs::File>,
    /// Tensors by flattened name (the names [`load_checkpoint`] gives them).
    pub tensors: BTreeMap<String, PthTensor>,
}

impl LazyPth {
    /// Opens a zip checkpoint (`Ok(None)` when `path` is not a zip).
    pub(crate) fn open(path: &Path) -> Result<Option<Self>> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
        if n < 4 || !(magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
            return Ok(None);
        }
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut z = PthZip::open(file, file_len, path)?;
        let pkl = z.pickle(path)?;
        let mut storage_error: Option<Error> = None;
        let v = {
            let mut load = |pid: &Value| -> std::result::Result<Value, PickleError> {
                let (dtype, key, numel) = storage_pid(pid)?;
                let name = z.storage_name(&key);
                let have = match z.size(&name, path) {
                    Ok(Some(n)) => n,
                    Ok(None) => return Err(PickleError::Msg(format!("storage '{name}' is missing from the zip"))),
                    Err(e) => {
                        let msg = e.to_string();
                        storage_error = Some(e);
                        return Err(PickleError::Msg(msg));
                    }
                };
                if let Some(e) = storage_too_small(&name, have, numel, dtype) {
                    return Err(e);
                }
                let lazy = Some(Rc::from(key.as_str()));
                Ok(Value::Storage(Rc::new(Storage { dtype, bytes: Vec::new(), big_endian: z.big_endian, lazy })))
            };
            unpickle(&pkl, path, Some(&mut load))
        };
        if let Some(e) = storage_error {
            return Err(e);
        }
        let (v, _cycles) = v?;
        if !matches!(v, Value::Dict(_)) {
            return Err(Error::format(path, format!("checkpoint top level is a {}, not a dict", v.kind())));
        }
        let mut tensors = BTreeMap::new();
        lazy_tensors(&v, "", 0, &mut tensors).map_err(|m| Error::format(path, m))?;
        Ok(Some(Self { zip: z, tensors }))
    }

    /// Reads one tensor as `f32` values (its storage entry only).
    pub(crate) fn read(&mut self, name: &str, path: &Path) -> Result<TensorData> {
        let t = self.tensors.get(name).ok_or_else(|| Error::format(path, format!("no tensor '{name}'")))?.clone();
        let entry = self.zip.storage_name(&t.key);
        let bytes =
            self.zip.read(&entry, path)?.ok_or_else(|| Error::format(path, format!("storage '{entry}' is missing")))?;
        let data = crate::tensor::materialize(&bytes, t.dtype, t.big_endian, t.offset, &t.size, &t.stride)
            .map_err(|m| Error::format(path, format!("tensor '{name}': {m}")))?;
        Ok(TensorData { shape: t.size, dtype: t.dtype, data })
    }
}

/// The lazy tensors of an unpickled value by flattened name, named as [`flatten`] names tensors.
fn lazy_tensors(
    v: &Value,
    name: &str,
    depth: usize,
    out: &mut BTreeMap<String, PthTensor>,
) -> std::result::Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels at '{name}'"));
    }
    match v {
        Value::LazyTensor(t) => {
            let t = PthTensor {
                key: t.key.to_string(),
                dtype: t.dtype,
                big_endian: t.big_endian,
                offset: t.offset,
                size: t.size.clone(),
                stride: t.stride.clone(),
            };
            out.insert(name.to_string(), t);
        }
        Value::Dict(m) => {
            for (k, val) in m.0.borrow().iter() {
                lazy_tensors(val, &join(name, &key_string(k)?), depth + 1, out)?;
            }
        }
        Value::Tuple(_) | Value::List(_) | Value::Set(_) => {
            for (i, it) in v.items().unwrap_or_default().iter().enumerate() {
                lazy_tensors(it, &join(name, &i.to_string()), depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn load_jittor(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let body = &bytes[..bytes.len() - 28];
    let digest = &bytes[bytes.len() - 28..bytes.len() - 8];
    if Sha1::digest(body).as_slice() != digest {
        return Err(Error::Checksum { path: path.to_owned() });
    }
    let (v, _cycles) = unpickle(body, path, None)?;
    from_value(v, CheckpointFormat::Jittor, path)
}

fn load_safetensors(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    use safetensors::SafeTensors;
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::format(path, format!("bad safetensors file: {e}")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::format(path, format!("bad safetensors file: {e}")))?;
    let mut ck = empty(CheckpointFormat::Safetensors);
    let mut views = st.tensors();
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    for (name, view) in views {
        let t = safetensors_view(&name, &view, path)?;
        ck.order.push(name.clone());
        ck.tensors.insert(name, t);
    }
    if let Some(m) = meta.metadata() {
        for (k, v) in m {
            ck.scalars.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    if !ck.tensors.is_empty() {
        ck.groups.push(String::new());
    }
    Ok(ck)
}

fn empty(format: CheckpointFormat) -> Checkpoint {
    Checkpoint { format, tensors: BTreeMap::new(), scalars: BTreeMap::new(), order: Vec::new(), groups: Vec::new() }
}

fn key_string(k: &Value) -> std::result::Result<String, String> {
    Ok(match k {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".into(),
        Value::Float(f) => f.to_string(),
        v => return Err(format!("unsupported dict key of type {}", v.kind())),
    })
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") }
}

fn json_scalar(v: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match v {
        Value::None => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Str(s) => J::String(s.to_string()),
        _ => return None,
    })
}

fn flatten(v: &Value, name: &str, depth: usize, ck: &mut Checkpoint) -> std::result::Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels at '{name}'"));
    }
    match v {
        Value::Tensor(t) => {
            if !ck.tensors.contains_key(name) {
                ck.order.push(name.to_string());
            }
            ck.tensors.insert(name.to_string(), (**t).clone());
        }
        Value::NdArray(a) => match a.borrow().as_ref() {
            Some(t) => {
                if !ck.tensors.contains_key(name) {
                    ck.order.push(name.to_string());
                }
                ck.tensors.insert(name.to_string(), t.clone());
            }
            None => return Err(format!("'{name}': numpy array without data")),
        },
        Value::Dict(m) => {
            for (k, val) in m.0.borrow().iter() {
                let k = key_string(k)?;
                flatten(val, &join(name, &k), depth + 1, ck)?;
            }
        }
        Value::Tuple(_) | Value::List(_) | Value::Set(_) => {
            let items = v.items().unwrap_or_default();
            let scalars: Option<Vec<_>> = items.iter().map(json_scalar).collect();
            match scalars {
                Some(js) => {
                    ck.scalars.insert(name.to_string(), serde_json::Value::Array(js));
                }
                None => {
                    for (i, it) in items.iter().enumerate() {
                        flatten(it, &join(name, &i.to_string()), depth + 1, ck)?;
                    }
                }
            }
        }
        other => {
            if let Some(j) = json_scalar(other) {
                ck.scalars.insert(name.to_string(), j);
            }
            // Bare storages, dtypes and globals carry nothing a model needs.
        }
    }
    Ok(())
}

fn from_value(v: Value, format: CheckpointFormat, path: &Path) -> Result<Checkpoint> {
    let mut ck = empty(format);
    let map = match &v {
        Value::Dict(m) => m.clone(),
        Value::Int(_) => {
            return Err(Error::unsupported(
                path,
                "legacy (pre-1.6, non-zip) PyTorch serialization is not supported; re-save it with a recent torch",
            ));
        }
        other => {
            return Err(Error::format(path, format!("checkpoint top level is a {}, not a dict", other.kind())));
        }
    };
    let mut top_tensors = false;
    for (k, val) in map.0.borrow().iter() {
        let k = key_string(k).map_err(|m| Error::format(path, m))?;
        let before = ck.tensors.len();
        flatten(val, &k, 1, &mut ck).map_err(|m| Error::format(path, m))?;
        if ck.tensors.len() > before {
            match val {
                Value::Tensor(_) | Value::NdArray(_) => top_tensors = true,
                _ => ck.groups.push(k),
            }
        }
    }
    if top_tensors {
        ck.groups.insert(0, String::new());
    }
    Ok(ck)
}

// ---------------------------------------------------------------------------------------------
// Writers

/// A value to save with [`save_pth`] / [`save_jittor_pkl`].
#[derive(Clone, Debug, PartialEq)]
pub enum SaveValue {
    Tensor(TensorData),
    /// A plain `dict`.
    Dict(Vec<(String, SaveValue)>),
    /// A `collections.OrderedDict` (what `state_dict()` returns in PyTorch).
    OrderedDict(Vec<(String, SaveValue)>),
    List(Vec<SaveValue>),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
}

impl SaveValue {
    /// An `OrderedDict` state dict from named tensors (in iteration order), each name prefixed
    /// with `prefix` (e.g. `"module."`, or `""`).
    pub fn state_dict<'a>(tensors: impl IntoIterator<Item = (&'a String, &'a TensorData)>, prefix: &str) -> Self {
        SaveValue::OrderedDict(
            tensors.into_iter().map(|(k, t)| (format!("{prefix}{k}"), SaveValue::Tensor(t.clone()))).collect(),
        )
    }
}

fn torch_storage_name(d: DType) -> &'static str {
    match d {
        DType::F64 => "DoubleStorage",
        DType::F32 => "FloatStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::I64 => "LongStorage",
        DType::I32 => "IntStorage",
        DType::I16 => "ShortStorage",
        DType::I8 => "CharStorage",
        DType::U8 => "ByteStorage",
        DType::Bool => "BoolStorage",
    }
}

fn check_tensor(path: &Path, t: &TensorData) -> Result<()> {
    if t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(t.data.len()) {
        return Err(Error::format(path, format!("tensor of shape {:?} holds {} values", t.shape, t.data.len())));
    }
    Ok(())
}

/// Pickles a [`SaveValue`] tree; the PyTorch and Jittor writers differ only in how a tensor is written.
trait PickleTree {
    fn writer(&mut self) -> &mut Writer;
    fn tensor(&mut self, t: &TensorData) -> Result<()>;

    fn value(&mut self, v: &SaveValue) -> Result<()> {
        match v {
            SaveValue::Tensor(t) => self.tensor(t)?,
            SaveValue::Dict(items) => {
                self.writer().op(b'}');
                self.items(items)?;
            }
            SaveValue::OrderedDict(items) => {
                self.writer().global("collections", "OrderedDict");
                self.writer().op(b')');
                self.writer().op(b'R');
                self.items(items)?;
            }
            SaveValue::List(items) => {
                self.writer().op(b']');
                if !items.is_empty() {
                    self.writer().mark();
                    for it in items {
                        self.value(it)?;
                    }
                    self.writer().op(b'e');
                }
            }
            SaveValue::Int(i) => self.writer().int(*i),
            SaveValue::Float(f) => self.writer().float(*f),
            SaveValue::Str(s) => self.writer().str(s),
            SaveValue::Bool(b) => self.writer().bool(*b),
            SaveValue::None => self.writer().none(),
        }
        Ok(())
    }

    fn items(&mut self, items: &[(String, SaveValue)]) -> Result<()> {
        for chunk in items.chunks(1000) {
            self.writer().mark();
            for (k, v) in chunk {
                self.writer().str(k);
                self.value(v)?;
            }
            self.writer().op(b'u');
        }
        Ok(())
    }
}

impl PickleTree for PthWriter<'_> {
    fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
    fn tensor(&mut self, t: &TensorData) -> Result<()> {
        self.storage_tensor(t)
    }
}

impl PickleTree for JittorWriter<'_> {
    fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
    fn tensor(&mut self, t: &TensorData) -> Result<()> {
        self.var(t)
    }
}

struct PthWriter<'a> {
    w: Writer,
    storages: Vec<(String, Vec<u8>)>,
    path: &'a Path,
}

impl PthWriter<'_> {
    fn storage_tensor(&mut self, t: &TensorData) -> Result<()> {
        check_tensor(self.path, t)?;
        let key = self.storages.len().to_string();
        let mut bytes = Vec::with_capacity(t.data.len() * t.dtype.size());
        for &v in &t.data {
            t.dtype.encode_le(v, &mut bytes);
        }
        let w = &mut self.w;
        w.global("torch._utils", "_rebuild_tensor_v2");
        w.tuple(6, |w| {
            w.tuple(5, |w| {
                w.str("storage");
                w.global("torch", torch_storage_name(t.dtype));
                w.str(&key);
                w.str("cpu");
                w.int(t.data.len() as i64);
            });
            w.op(b'Q');
            w.int(0);
            w.usize_tuple(&t.shape);
            w.usize_tuple(&c_strides(&t.shape));
            w.bool(false);
            w.global("collections", "OrderedDict");
            w.op(b')');
            w.op(b'R');
        });
        w.op(b'R');
        self.storages.push((key, bytes));
        Ok(())
    }
}

/// Serialises a PyTorch zip checkpoint (see [`save_pth`]).
pub fn pth_bytes(root: &[(String, SaveValue)], path: &Path) -> Result<Vec<u8>> {
    let mut pw = PthWriter { w: Writer::new(2), storages: Vec::new(), path };
    pw.w.op(b'}');
    pw.items(root)?;
    let pkl = pw.w.stop();
    let zerr = |e: zip::result::ZipError| Error::format(path, format!("cannot build the zip archive: {e}"));
    let ioerr = |e: std::io::Error| Error::io(path, e);
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = |n: usize| {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .with_alignment(64)
            .large_file(n as u64 >= u32::MAX as u64)
    };
    let entry = |zw: &mut zip::ZipWriter<Cursor<Vec<u8>>>, name: &str, data: &[u8]| -> Result<()> {
        zw.start_file(format!("archive/{name}"), opts(data.len())).map_err(zerr)?;
        zw.write_all(data).map_err(ioerr)
    };
    entry(&mut zw, "data.pkl", &pkl)?;
    entry(&mut zw, "byteorder", b"little")?;
    for (key, bytes) in &pw.storages {
        entry(&mut zw, &format!("data/{key}"), bytes)?;
    }
    entry(&mut zw, "version", b"3\n")?;
    Ok(zw.finish().map_err(zerr)?.into_inner())
}

/// Writes a `torch.load`-able zip checkpoint (`archive/data.pkl` as a protocol-2 pickle of
/// `_rebuild_tensor_v2` tensors with typed-storage persistent ids, `archive/data/N`,
/// `archive/byteorder` = `little`, `archive/version` = `3`), atomically. The top level is a
/// `dict` of `root`; tensors keep their dtype (values rounded/saturated from `f32`).
pub fn save_pth(path: &Path, root: &[(String, SaveValue)]) -> Result<()> {
    let bytes = pth_bytes(root, path)?;
    write_atomic(path, &bytes)
}

fn numpy_code(d: DType) -> (&'static str, &'static str) {
    match d {
        DType::F64 => ("f8", "<"),
        DType::F32 | DType::BF16 => ("f4", "<"),
        DType::F16 => ("f2", "<"),
        DType::I64 => ("i8", "<"),
        DType::I32 => ("i4", "<"),
        DType::I16 => ("i2", "<"),
        DType::I8 => ("i1", "|"),
        DType::U8 => ("u1", "|"),
        DType::Bool => ("b1", "|"),
    }
}

struct JittorWriter<'a> {
    w: Writer,
    path: &'a Path,
}

impl JittorWriter<'_> {
    /// `jittor.Var(numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') + BUILD(state))`.
    fn var(&mut self, t: &TensorData) -> Result<()> {
        check_tensor(self.path, t)?;
        let dtype = if t.dtype == DType::BF16 { DType::F32 } else { t.dtype };
        let (code, order) = numpy_code(dtype);
        let mut raw = Vec::with_capacity(t.data.len() * dtype.size());
        for &v in &t.data {
            dtype.encode_le(v, &mut raw);
        }
        let w = &mut self.w;
        w.global("jittor", "Var");
        w.tuple(1, |w| {
            w.global("numpy.core.multiarray", "_reconstruct");
            w.tuple(3, |w| {
                w.global("numpy", "ndarray");
                w.tuple(1, |w| w.int(0));
                w.bytes(b"b");
            });
            w.op(b'R');
            w.tuple(5, |w| {
                w.int(1);
                w.usize_tuple(&t.shape);
                w.global("numpy", "dtype");
                w.tuple(3, |w| {
                    w.str(code);
                    w.bool(false);
                    w.bool(true);
                });
                w.op(b'R');
                w.tuple(8, |w| {
                    w.int(3);
                    w.str(order);
                    w.none();
                    w.none();
                    w.none();
                    w.int(-1);
                    w.int(-1);
                    w.int(0);
                });
                w.op(b'b');
                w.bool(false);
                w.bytes(&raw);
            });
            w.op(b'b');
        });
        w.op(b'R');
        Ok(())
    }
}

/// Serialises a Jittor checkpoint (see [`save_jittor_pkl`]).
pub fn jittor_pkl_bytes(root: &[(String, SaveValue)], path: &Path) -> Result<Vec<u8>> {
    let mut jw = JittorWriter { w: Writer::new(4), path };
    jw.w.op(b'}');
    jw.items(root)?;
    let mut out = jw.w.stop();
    let digest = Sha1::digest(&out);
    out.extend_from_slice(&digest);
    out.extend_from_slice(JITTOR_MAGIC);
    Ok(out)
}

/// Writes a checkpoint as Jittor's `jt.save` does, atomically: a protocol-4 pickle of a `dict` of
/// `root` with every tensor as `jittor.Var(numpy array)` (the array global is written with the
/// NumPy 1.x name `numpy.core.multiarray._reconstruct`, loadable by NumPy 1 and 2), followed by
/// the SHA-1 of the pickle and `HCAJSLHD`. bfloat16 tensors are stored as float32 (NumPy has no
/// bfloat16).
pub fn save_jittor_pkl(path: &Path, root: &[(String, SaveValue)]) -> Result<()> {
    let bytes = jittor_pkl_bytes(root, path)?;
    write_atomic(path, &bytes)
}

/// Writes tensors as a safetensors file with every tensor stored as F32, atomically.
pub fn save_safetensors(path: &Path, tensors: &BTreeMap<String, TensorData>) -> Result<()> {
    let mut bufs = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        check_tensor(path, t)?;
        let raw: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        bufs.push((name.as_str(), t.shape.clone(), raw));
    }
    let mut views = Vec::with_capacity(bufs.len());
    for (name, shape, raw) in &bufs {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
            .map_err(|e| Error::format(path, format!("tensor '{name}': {e}")))?;
        views.push((*name, v));
    }
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| Error::format(path, format!("cannot serialise safetensors: {e}")))?;
    write_atomic(path, &bytes)
}
