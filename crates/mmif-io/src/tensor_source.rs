//! Reading a few tensors out of a large checkpoint: [`TensorSource`] lists every tensor's name and
//! shape, then reads only the tensors asked for, so the memory a reader needs is that of the
//! tensors it takes, not of the file.
//!
//! * **safetensors** (`.safetensors`): the header is read through a memory map; a tensor's bytes
//!   are read from the file when it is read (plain reads, not through the map, so the pages of the tensors read stay
//!   out of the process's memory once converted).
//! * **sharded safetensors** (Hugging Face `model.safetensors.index.json`, whose `weight_map`
//!   names each tensor's shard): pass the index, the folder holding it, or one of its shards
//!   (`model-00001-of-00002.safetensors` beside the index); every shard is memory-mapped.
//! * **PyTorch zip checkpoints** (`.pth`, `.pt`, …: one zip entry per storage): the pickle is read
//!   when the checkpoint is opened, with the storages left unread; a tensor's storage entry is read
//!   when the tensor is read.
//! * anything else [`crate::load_checkpoint`] reads (Jittor `.pkl`, plain pickles): loaded whole,
//!   then served from memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;

use std::cell::RefCell;

use crate::checkpoint::{LazyPth, is_safetensors, safetensors_values};
use crate::{Error, Result, TensorData};

/// The name of Hugging Face's shard index.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// A checkpoint whose tensors are read one at a time (see the module documentation).
pub struct TensorSource {
    /// The file the user named (or the index), for messages.
    path: PathBuf,
    /// Name → (shape, where it lives).
    entries: BTreeMap<String, (Vec<usize>, Slot)>,
    maps: Vec<Mapped>,
    loaded: BTreeMap<String, TensorData>,
    /// A PyTorch zip checkpoint read one storage at a time.
    pth: Option<RefCell<LazyPth>>,
}

/// One safetensors file (its header read through a map when it is opened, then unmapped): the
/// open file and where its data starts.
struct Mapped {
    path: PathBuf,
    file: File,
    /// Bytes before the data section (8 + header length).
    data_start: u64,
}

#[derive(Clone, Copy)]
enum Slot {
    /// Index into `maps`, the tensor's dtype and its byte range in the data section (from the
    /// header, parsed once when the file is opened).
    Mapped(usize, safetensors::Dtype, (usize, usize)),
    /// In `loaded`.
    Loaded,
    /// In `pth`.
    Pth,
}

fn map_file(path: &Path) -> Result<(Mmap, File)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and private to this reader; like every reader of a file, it
    // assumes that nobody truncates or rewrites the checkpoint while it is being read (a
    // truncation would fault rather than return wrong data silently).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok((map, file))
}

/// The shard index to use for `path`: the path itself (`….index.json`), the index inside a
/// folder, or the index beside a shard named `…-of-….safetensors`.
fn shard_index(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".index.json") {
        return Some(path.to_path_buf());
    }
    let beside = |dir: &Path| Some(dir.join(SHARD_INDEX)).filter(|p| p.is_file());
    if path.is_dir() {
        return beside(path);
    }
    if name.ends_with(".safetensors") && name.contains("-of-") {
        return beside(path.parent()?);
    }
    None
}

impl TensorSource {
    /// Opens `path`: a safetensors file, a shard index (or its folder, or one of its shards), or
    /// any checkpoint [`crate::load_checkpoint`] reads.
    pub fn open(path: &Path) -> Result<Self> {
        let mut src = Self {
            path: path.to_path_buf(),
            entries: BTreeMap::new(),
            maps: Vec::new(),
            loaded: BTreeMap::new(),
            pth: None,
        };
        if let Some(index) = shard_index(path) {
            src.open_shards(&index)?;
            return Ok(src);
        }
        if path.is_dir() {
            let single = path.join("model.safetensors");
            if single.is_file() {
                return Self::open(&single);
            }
            return Err(Error::format(
                path,
                format!("a folder, but it holds neither {SHARD_INDEX} nor model.safetensors; name the checkpoint file"),
            ));
        }
        let (map, file) = map_file(path)?;
        if is_safetensors(&map) {
            src.add_mapped(path, map, file)?;
            return Ok(src);
        }
        drop(map);
        if let Some(pth) = LazyPth::open(path)? {
            for (name, t) in &pth.tensors {
                src.entries.insert(name.clone(), (t.size.clone(), Slot::Pth));
            }
            src.pth = Some(RefCell::new(pth));
            return Ok(src);
        }
        let ck = crate::load_checkpoint(path)?;
        for (name, t) in ck.tensors {
            src.entries.insert(name.clone(), (t.shape.clone(), Slot::Loaded));
            src.loaded.insert(name, t);
        }
        Ok(src)
    }

    fn add_mapped(&mut self, path: &Path, map: Mmap, file: File) -> Result<usize> {
        let i = self.maps.len();
        let (n, meta) =
            SafeTensors::read_metadata(&map).map_err(|e| Error::format(path, format!("bad safetensors file: {e}")))?;
        for (name, info) in meta.tensors() {
            self.entries.insert(name, (info.shape.clone(), Slot::Mapped(i, info.dtype, info.data_offsets)));
        }
        self.maps.push(Mapped { path: path.to_path_buf(), file, data_start: 8 + n as u64 });
        Ok(i)
    }

    fn open_shards(&mut self, index: &Path) -> Result<()> {
        let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::format(index, format!("not a JSON shard index: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::format(index, "a shard index needs a \"weight_map\" object"))?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, shard) in map {
            let shard = shard
                .as_str()
                .filter(|s| !s.contains('/') && !s.contains('\\') && *s != ".." && !s.is_empty())
                .ok_or_else(|| Error::format(index, format!("tensor '{name}': the shard must be a file name")))?;
            shards.entry(shard.to_string()).or_default().push(name.clone());
        }
        for (shard, names) in shards {
            let path = dir.join(&shard);
            let (map, file) = map_file(&path)?;
            let i = self.add_mapped(&path, map, file)?;
            if let Some(name) =
                names.iter().find(|n| !matches!(self.entries.get(*n), Some((_, Slot::Mapped(j, ..))) if *j == i))
            {
                return Err(Error::format(index, format!("tensor '{name}' is not in its shard {shard}")));
            }
        }
        self.path = index.to_path_buf();
        Ok(())
    }

    /// The file named in messages (the index for sharded checkpoints).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's name and shape, by name.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.entries.iter().map(|(k, (s, _))| (k.as_str(), s.as_slice()))
    }

    /// The shape of `name`, if the checkpoint has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|(s, _)| s.as_slice())
    }

    /// Reads one tensor as `f32` values.
    pub fn read(&self, name: &str) -> Result<TensorData> {
        match self.entries.get(name) {
            None => Err(Error::format(&self.path, format!("no tensor '{name}'"))),
            Some((_, Slot::Loaded)) => Ok(self.loaded[name].clone()),
            Some((_, Slot::Pth)) => match &self.pth {
                Some(pth) => pth.borrow_mut().read(name, &self.path),
                None => Err(Error::format(&self.path, format!("no tensor '{name}'"))),
            },
            Some((shape, Slot::Mapped(i, dtype, (begin, end)))) => {
                use std::io::{Read, Seek, SeekFrom};
                let m = &self.maps[*i];
                let mut bytes = vec![0u8; end - begin];
                let mut file = &m.file;
                file.seek(SeekFrom::Start(m.data_start + *begin as u64))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| Error::io(&m.path, e))?;
                safetensors_values(name, *dtype, shape, &bytes, &m.path)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::save_safetensors;

    fn t(shape: &[usize], v: f32) -> TensorData {
        TensorData::f32(shape.to_vec(), vec![v; shape.iter().product()])
    }

    #[test]
    fn reads_pth_tensors_one_at_a_time_as_load_checkpoint_names_and_reads_them() {
        use crate::checkpoint::{SaveValue, save_pth};
        let scratch = mmif_testkit::Scratch::new("lazy-pth");
        let path = scratch.0.join("model.pth");
        let w = TensorData::f32(vec![2, 3], (0..6).map(|i| i as f32 * 0.5 - 1.0).collect());
        let inner = vec![
            ("enc.weight".to_string(), SaveValue::Tensor(w.clone())),
            ("enc.bias".to_string(), SaveValue::Tensor(t(&[3], 0.25))),
        ];
        let root = vec![("model".to_string(), SaveValue::Dict(inner)), ("epoch".to_string(), SaveValue::Int(3))];
        save_pth(&path, &root).unwrap();
        let whole = crate::load_checkpoint(&path).unwrap();
        let src = TensorSource::open(&path).unwrap();
        assert!(src.pth.is_some(), "a zip checkpoint is read lazily");
        let names: Vec<&str> = src.shapes().map(|(n, _)| n).collect();
        assert_eq!(names, whole.tensors.keys().map(String::as_str).collect::<Vec<_>>());
        for (name, t) in &whole.tensors {
            assert_eq!(src.shape(name), Some(t.shape.as_slice()));
            assert_eq!(&src.read(name).unwrap(), t, "{name}");
        }
        assert!(src.read("model.nothing").is_err());
    }

    #[test]
    fn reads_single_and_sharded_safetensors() {
        let scratch = mmif_testkit::Scratch::new("shards");
        let dir = scratch.0.clone();
        let mut a = BTreeMap::new();
        a.insert("x.weight".to_string(), t(&[2, 3], 1.5));
        let mut b = BTreeMap::new();
        b.insert("y.bias".to_string(), t(&[4], -2.0));
        save_safetensors(&dir.join("model-00001-of-00002.safetensors"), &a).unwrap();
        save_safetensors(&dir.join("model-00002-of-00002.safetensors"), &b).unwrap();
        let single = TensorSource::open(&dir.join("model-00002-of-00002.safetensors")).unwrap();
        assert_eq!(single.shapes().count(), 1);
        let index = serde_json::json!({"metadata": {}, "weight_map": {
            "x.weight": "model-00001-of-00002.safetensors", "y.bias": "model-00002-of-00002.safetensors"}});
        std::fs::write(dir.join(SHARD_INDEX), index.to_string()).unwrap();
        for p in [dir.clone(), dir.join(SHARD_INDEX), dir.join("model-00001-of-00002.safetensors")] {
            let src = TensorSource::open(&p).unwrap();
            assert_eq!(src.shape("x.weight"), Some(&[2usize, 3][..]));
            assert_eq!(src.read("y.bias").unwrap().data, vec![-2.0; 4]);
            assert!(src.read("z").is_err());
        }
        let bad = serde_json::json!({"weight_map": {"x.weight": "../elsewhere.safetensors"}});
        std::fs::write(dir.join(SHARD_INDEX), bad.to_string()).unwrap();
        assert!(TensorSource::open(&dir).is_err());
    }
}
