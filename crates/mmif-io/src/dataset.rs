//! The `.mmifds` dataset: what `mmif prepare` writes and `mmif train` reads. Each record holds
//! `sources` image planes of the same size and, in version 2, a text-feature matrix (FILM).
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "MMIFDS\0\x01"
//! 8       4     u32 LE version (1 or 2)
//! 12      4     u32 LE sources per record (2: the two images of a pair)
//! 16      4     u32 LE patch height H
//! 20      4     u32 LE patch width W
//! 24      8     u64 LE record count N
//! 32      8     u64 LE metadata offset M
//! 40      8     u64 LE metadata length L
//! 48      8     version 1: zero; version 2: u64 LE offset X of the record index
//! 56      4     version 1: zero; version 2: u32 LE text-feature width D (768 for FILM)
//! 60      4     zero
//! 64      …     N records
//! X       16·N  version 2 only: the record index, per record u64 LE offset, u64 LE token count T
//! M       L     metadata: UTF-8 JSON (how the records were made, source file names)
//! ```
//!
//! **Version 1** (no text): a record is `sources` planes of H×W f32 LE, row-major, in [0, 1];
//! record `i` starts at `64 + i·sources·H·W·4` and `M = 64 + N·sources·H·W·4`.
//!
//! **Version 2** (text features): a record is the same planes followed by its text features,
//! `T×D` f32 LE row-major (`T` tokens of width `D`). `T` may differ between records — the
//! official FILM data script stores each sample's feature array as it is, so nothing forces one
//! length; a batch, however, needs one `T` for all its samples (PyTorch's collate stacks them),
//! which [`Dataset::tokens`] / [`Dataset::uniform_tokens`] let a loader check without reading
//! the records. Records are stored back to back from offset 64, so the index is redundant with
//! the token counts; a reader checks that it is consistent, that `X` is the end of the last
//! record, `M = X + 16·N` and `M + L` the file size.
//!
//! The writer writes version 1 when created without text ([`DatasetWriter::create`]; those files
//! are unchanged from before version 2 existed) and version 2 with text
//! ([`DatasetWriter::create_with_text`]). It streams records to a temporary file next to the
//! target (the index is kept in memory: 16 bytes a record), fills in the header and renames it
//! into place, so a reader never sees a half-written dataset. Corrupt or truncated files give a
//! [`DatasetError`], never a panic.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MMIFDS\0\x01";
const HEADER: u64 = 64;

/// Dataset errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// (The OS error is part of the message, not a `source`, so a printed chain does not repeat it.)
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: not an mmif dataset: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Record { path: PathBuf, msg: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |err| DatasetError::Io { path: path.to_path_buf(), err }
}

/// The text features of one record: `tokens × dim` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TextFeatures {
    pub tokens: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Streams records into a new dataset file.
pub struct DatasetWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    sources: usize,
    height: usize,
    width: usize,
    count: u64,
    /// Version 2: the text width and, per record, (offset, tokens).
    text: Option<(usize, Vec<(u64, u64)>)>,
    /// Bytes written after the header.
    written: u64,
}

impl DatasetWriter {
    /// Starts a version-1 dataset of `sources`-plane records of `height×width` at `path`
    /// (replaced on [`DatasetWriter::finish`]; untouched if the writer is dropped unfinished).
    pub fn create(path: &Path, sources: usize, height: usize, width: usize) -> Result<Self, DatasetError> {
        Self::start(path, sources, height, width, None)
    }

    /// Starts a version-2 dataset whose records also carry `T×text_dim` text features
    /// ([`DatasetWriter::push_with_text`]).
    pub fn create_with_text(
        path: &Path,
        sources: usize,
        height: usize,
        width: usize,
        text_dim: usize,
    ) -> Result<Self, DatasetError> {
        if text_dim == 0 || text_dim > u32::MAX as usize {
            return Err(DatasetError::Format {
                path: path.to_path_buf(),
                msg: format!("text-feature width {text_dim} is not usable"),
            });
        }
        Self::start(path, sources, height, width, Some(text_dim))
    }

    fn start(
        path: &Path,
        sources: usize,
        height: usize,
        width: usize,
        text_dim: Option<usize>,
    ) -> Result<Self, DatasetError> {
        let name = path.file_name().ok_or_else(|| DatasetError::Format {
            path: path.to_path_buf(),
            msg: "the output path has no file name".into(),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let mut out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        out.write_all(&[0u8; HEADER as usize]).map_err(io(&tmp))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            sources,
            height,
            width,
            count: 0,
            text: text_dim.map(|d| (d, Vec::new())),
            written: 0,
        })
    }

    fn write_planes(&mut self, planes: &[&[f32]]) -> Result<(), DatasetError> {
        assert_eq!(planes.len(), self.sources, "a record has one plane per source");
        let out = self.out.as_mut().expect("writer not finished");
        for p in planes {
            assert_eq!(p.len(), self.height * self.width, "plane size");
            out.write_all(&f32_bytes(p)).map_err(io(&self.tmp))?;
            self.written += (p.len() * 4) as u64;
        }
        Ok(())
    }

    /// Appends one record of a version-1 dataset: `sources` planes of `height·width` values each.
    ///
    /// # Panics
    /// On a dataset created with text, or planes of the wrong number or size.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<(), DatasetError> {
        assert!(self.text.is_none(), "this dataset's records carry text features: use push_with_text");
        self.write_planes(planes)?;
        self.count += 1;
        Ok(())
    }

    /// Appends one record of a version-2 dataset: the planes and `text`, `tokens × text_dim`
    /// values row-major. A text of another size, or of no tokens, is an error (nothing is
    /// written then).
    ///
    /// # Panics
    /// On a dataset created without text, or planes of the wrong number or size.
    pub fn push_with_text(&mut self, planes: &[&[f32]], text: &[f32], tokens: usize) -> Result<(), DatasetError> {
        let dim = self.text.as_ref().expect("this dataset has no text features: use push").0;
        if tokens == 0 || text.len() != tokens * dim {
            return Err(DatasetError::Record {
                path: self.path.clone(),
                msg: format!(
                    "record {}: text features of {} values for {tokens} tokens of width {dim}",
                    self.count,
                    text.len()
                ),
            });
        }
        let offset = HEADER + self.written;
        self.write_planes(planes)?;
        let out = self.out.as_mut().expect("writer not finished");
        out.write_all(&f32_bytes(text)).map_err(io(&self.tmp))?;
        self.written += (text.len() * 4) as u64;
        self.text.as_mut().expect("text dataset").1.push((offset, tokens as u64));
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends the index (version 2) and the metadata, writes the header and renames the file
    /// into place.
    pub fn finish(mut self, metadata: &serde_json::Value) -> Result<u64, DatasetError> {
        let mut out = self.out.take().expect("writer not finished");
        let meta = serde_json::to_vec_pretty(metadata).expect("JSON serialises");
        let end = HEADER + self.written;
        let (version, index_offset, text_dim, meta_offset) = match &self.text {
            None => (1u32, 0u64, 0u32, end),
            Some((dim, index)) => {
                let bytes: Vec<u8> =
                    index.iter().flat_map(|&(o, t)| [o.to_le_bytes(), t.to_le_bytes()]).flatten().collect();
                out.write_all(&bytes).map_err(io(&self.tmp))?;
                (2, end, *dim as u32, end + bytes.len() as u64)
            }
        };
        out.write_all(&meta).map_err(io(&self.tmp))?;
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&version.to_le_bytes());
        for v in [self.sources, self.height, self.width] {
            header.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for v in [self.count, meta_offset, meta.len() as u64, index_offset] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        header.extend_from_slice(&text_dim.to_le_bytes());
        header.resize(HEADER as usize, 0);
        let mut file = out.into_inner().map_err(|e| io(&self.tmp)(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io(&self.tmp))?;
        file.write_all(&header).map_err(io(&self.tmp))?;
        file.sync_all().map_err(io(&self.tmp))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(self.count)
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A dataset opened for random access.
#[derive(Debug)]
pub struct Dataset {
    path: PathBuf,
    file: File,
    /// The format version of the file (1 or 2).
    pub version: u32,
    pub sources: usize,
    pub height: usize,
    pub width: usize,
    pub len: usize,
    /// Width `D` of the text features (version 2), `None` when the records carry none.
    pub text_dim: Option<usize>,
    pub metadata: serde_json::Value,
    /// Version 2: per record (offset, tokens).
    index: Vec<(u64, usize)>,
}

impl Dataset {
    pub fn open(path: &Path) -> Result<Self, DatasetError> {
        let bad = |msg: String| DatasetError::Format { path: path.to_path_buf(), msg };
        let mut file = File::open(path).map_err(io(path))?;
        let size = file.metadata().map_err(io(path))?.len();
        let mut h = [0u8; HEADER as usize];
        if size < HEADER {
            return Err(bad(format!("{size} bytes is shorter than the 64-byte header")));
        }
        file.read_exact(&mut h).map_err(io(path))?;
        if &h[..8] != MAGIC {
            return Err(bad("wrong magic bytes (expected a file written by `mmif prepare`)".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != 1 && version != 2 {
            return Err(bad(format!("unsupported version {version} (this build reads versions 1 and 2)")));
        }
        let (sources, height, width) = (u32_at(12) as u64, u32_at(16) as u64, u32_at(20) as u64);
        let (count, meta_offset, meta_len) = (u64_at(24), u64_at(32), u64_at(40));
        if sources == 0 || height == 0 || width == 0 {
            return Err(bad(format!("empty record shape {sources}×{height}×{width}")));
        }
        let planes = sources.checked_mul(height).and_then(|v| v.checked_mul(width)).and_then(|v| v.checked_mul(4));
        let planes = planes
            .filter(|&p| p <= size)
            .ok_or_else(|| bad(format!("record shape {sources}×{height}×{width} exceeds the file")))?;
        let meta_end = meta_offset.checked_add(meta_len);
        if meta_end != Some(size) {
            return Err(bad(format!(
                "inconsistent sizes: metadata at {meta_offset} (+{meta_len}), file {size} bytes (truncated?)"
            )));
        }
        let (text_dim, index) = if version == 1 {
            let expected = count.checked_mul(planes).and_then(|d| d.checked_add(HEADER));
            if expected != Some(meta_offset) {
                return Err(bad(format!(
                    "inconsistent sizes: {count} records of {planes} bytes, metadata at {meta_offset} (+{meta_len}), file {size} bytes (truncated?)"
                )));
            }
            (None, Vec::new())
        } else {
            let (index_offset, dim) = (u64_at(48), u32_at(56) as u64);
            if dim == 0 {
                return Err(bad("version 2 with text-feature width 0".into()));
            }
            let index_len = count.checked_mul(16).filter(|&l| l <= size);
            if index_len.and_then(|l| index_offset.checked_add(l)) != Some(meta_offset) {
                return Err(bad(format!(
                    "inconsistent sizes: index of {count} records at {index_offset}, metadata at {meta_offset}, file {size} bytes (truncated?)"
                )));
            }
            file.seek(SeekFrom::Start(index_offset)).map_err(io(path))?;
            let mut raw = vec![0u8; (count * 16) as usize];
            file.read_exact(&mut raw).map_err(io(path))?;
            let mut index = Vec::with_capacity(count as usize);
            let mut next = HEADER;
            for (i, e) in raw.chunks_exact(16).enumerate() {
                let offset = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
                let tokens = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
                let bytes = tokens.checked_mul(dim).and_then(|v| v.checked_mul(4)).and_then(|v| v.checked_add(planes));
                let end = bytes.and_then(|b| offset.checked_add(b));
                if offset != next || tokens == 0 || end.is_none_or(|e| e > index_offset) {
                    return Err(bad(format!(
                        "record {i}: inconsistent index entry (offset {offset}, {tokens} tokens)"
                    )));
                }
                next = end.expect("checked");
                index.push((offset, tokens as usize));
            }
            if next != index_offset {
                return Err(bad(format!("the records end at {next}, but the index starts at {index_offset}")));
            }
            (Some(dim as usize), index)
        };
        file.seek(SeekFrom::Start(meta_offset)).map_err(io(path))?;
        let mut meta = vec![0u8; meta_len as usize];
        file.read_exact(&mut meta).map_err(io(path))?;
        let metadata = serde_json::from_slice(&meta).map_err(|e| bad(format!("metadata is not JSON: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            version,
            sources: sources as usize,
            height: height as usize,
            width: width as usize,
            len: count as usize,
            text_dim,
            metadata,
            index,
        })
    }

    fn plane_bytes(&self) -> usize {
        self.sources * self.height * self.width * 4
    }

    fn record_offset(&self, i: usize) -> u64 {
        match self.text_dim {
            None => HEADER + (i * self.plane_bytes()) as u64,
            Some(_) => self.index[i].0,
        }
    }

    fn read_f32(&mut self, offset: u64, n: usize) -> Result<Vec<f32>, DatasetError> {
        self.file.seek(SeekFrom::Start(offset)).map_err(io(&self.path))?;
        let mut bytes = vec![0u8; n * 4];
        self.file.read_exact(&mut bytes).map_err(io(&self.path))?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }

    /// Record `i`: `sources` planes of `height·width` values.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn get(&mut self, i: usize) -> Result<Vec<Vec<f32>>, DatasetError> {
        assert!(i < self.len, "record {i} out of {}", self.len);
        let plane = self.height * self.width;
        let vals = self.read_f32(self.record_offset(i), self.sources * plane)?;
        Ok(vals.chunks(plane).map(<[f32]>::to_vec).collect())
    }

    /// The text features of record `i`, `None` when the dataset has none.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn text(&mut self, i: usize) -> Result<Option<TextFeatures>, DatasetError> {
        assert!(i < self.len, "record {i} out of {}", self.len);
        let Some(dim) = self.text_dim else { return Ok(None) };
        let tokens = self.index[i].1;
        let data = self.read_f32(self.record_offset(i) + self.plane_bytes() as u64, tokens * dim)?;
        Ok(Some(TextFeatures { tokens, dim, data }))
    }

    /// The token count `T` of record `i`'s text features (no I/O), `None` without text.
    pub fn tokens(&self, i: usize) -> Option<usize> {
        self.text_dim.map(|_| self.index[i].1)
    }

    /// The token count shared by every record, if there is text and one count.
    pub fn uniform_tokens(&self) -> Option<usize> {
        let first = self.index.first()?.1;
        self.index.iter().all(|e| e.1 == first).then_some(first)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmifds-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_random_access_and_corruption() {
        let dir = scratch("v1");
        let path = dir.join("d.mmifds");
        let mut w = DatasetWriter::create(&path, 2, 3, 4).unwrap();
        for r in 0..5 {
            let a: Vec<f32> = (0..12).map(|i| (r * 100 + i) as f32).collect();
            let b: Vec<f32> = a.iter().map(|v| -v).collect();
            w.push(&[&a, &b]).unwrap();
        }
        assert!(!path.exists(), "nothing visible before finish");
        assert_eq!(w.finish(&serde_json::json!({"k": 1})).unwrap(), 5);
        let mut d = Dataset::open(&path).unwrap();
        assert_eq!((d.version, d.len, d.sources, d.height, d.width), (1, 5, 2, 3, 4));
        assert_eq!(d.metadata["k"], 1);
        let r3 = d.get(3).unwrap();
        assert_eq!(r3[0][5], 305.0);
        assert_eq!(r3[1][11], -311.0);
        assert_eq!(d.get(0).unwrap()[0][0], 0.0);
        assert_eq!((d.text_dim, d.text(2).unwrap(), d.tokens(2), d.uniform_tokens()), (None, None, None, None));
        // Truncation is detected.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Dataset::open(&path).unwrap_err().to_string().contains("inconsistent"));
        std::fs::write(&path, b"hello").unwrap();
        assert!(Dataset::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A version-1 file assembled byte by byte from the layout (not by the writer).
    fn v1_bytes() -> Vec<u8> {
        let meta = br#"{"made": "by hand"}"#;
        let planes: Vec<f32> = (0..2 * 2 * 2 * 3).map(|v| v as f32 * 0.5).collect(); // 2 records × 2 sources × 2×3
        let mut b = Vec::new();
        b.extend_from_slice(b"MMIFDS\0\x01");
        for v in [1u32, 2, 2, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let meta_offset = 64 + planes.len() as u64 * 4;
        for v in [2u64, meta_offset, meta.len() as u64] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.resize(64, 0);
        b.extend(planes.iter().flat_map(|v| v.to_le_bytes()));
        b.extend_from_slice(meta);
        b
    }

    #[test]
    fn version_1_files_stay_readable_and_are_still_written() {
        let dir = scratch("compat");
        let path = dir.join("old.mmifds");
        std::fs::write(&path, v1_bytes()).unwrap();
        let mut d = Dataset::open(&path).unwrap();
        assert_eq!((d.version, d.len, d.sources, d.height, d.width, d.text_dim), (1, 2, 2, 2, 3, None));
        assert_eq!(d.metadata["made"], "by hand");
        let r1 = d.get(1).unwrap();
        assert_eq!(r1[0], vec![6.0, 6.5, 7.0, 7.5, 8.0, 8.5]);
        assert_eq!(r1[1][5], 11.5);
        // The writer without text produces exactly this layout.
        let again = dir.join("again.mmifds");
        let mut w = DatasetWriter::create(&again, 2, 2, 3).unwrap();
        for r in d.get(0).into_iter().chain(d.get(1)) {
            w.push(&[&r[0], &r[1]]).unwrap();
        }
        w.finish(&serde_json::json!({"made": "by hand"})).unwrap();
        let written = std::fs::read(&again).unwrap();
        let hand = v1_bytes();
        // The same header (the metadata is pretty-printed, so its length differs) and records.
        assert_eq!(&written[..40], &hand[..40], "header");
        assert_eq!(&written[48..64 + 96], &hand[48..64 + 96], "header and records");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn text_of(r: usize, tokens: usize, dim: usize) -> Vec<f32> {
        (0..tokens * dim).map(|i| (r * 1000 + i) as f32 + 0.25).collect()
    }

    /// A version-2 dataset of 4 records of 2×(2×3) planes with 3, 1, 3, 5 tokens of width 4.
    fn write_v2(path: &Path) -> Vec<usize> {
        let tokens = vec![3, 1, 3, 5];
        let mut w = DatasetWriter::create_with_text(path, 2, 2, 3, 4).unwrap();
        for (r, &t) in tokens.iter().enumerate() {
            let a: Vec<f32> = (0..6).map(|i| (r * 10 + i) as f32).collect();
            let b: Vec<f32> = a.iter().map(|v| -v).collect();
            w.push_with_text(&[&a, &b], &text_of(r, t, 4), t).unwrap();
        }
        // A text of the wrong size is refused and writes nothing.
        let a = [0.0f32; 6];
        let err = w.push_with_text(&[&a, &a], &[1.0; 7], 2).unwrap_err().to_string();
        assert!(err.contains("7 values for 2 tokens of width 4"), "{err}");
        assert!(w.push_with_text(&[&a, &a], &[], 0).is_err(), "no tokens");
        assert_eq!(w.len(), 4);
        w.finish(&serde_json::json!({"text": true})).unwrap();
        tokens
    }

    #[test]
    fn text_features_round_trip_with_random_access() {
        let dir = scratch("v2");
        let path = dir.join("t.mmifds");
        let tokens = write_v2(&path);
        let mut d = Dataset::open(&path).unwrap();
        assert_eq!((d.version, d.len, d.text_dim), (2, 4, Some(4)));
        assert_eq!(d.metadata["text"], true);
        for r in [3, 0, 2, 1] {
            let planes = d.get(r).unwrap();
            assert_eq!(planes[0][4], (r * 10 + 4) as f32);
            assert_eq!(planes[1][5], -((r * 10 + 5) as f32));
            let t = d.text(r).unwrap().expect("text");
            assert_eq!((t.tokens, t.dim), (tokens[r], 4));
            assert_eq!(t.data, text_of(r, tokens[r], 4));
            assert_eq!(d.tokens(r), Some(tokens[r]));
        }
        assert_eq!(d.uniform_tokens(), None, "3, 1, 3, 5 tokens");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_give_errors_not_panics() {
        let dir = scratch("corrupt");
        let good = dir.join("good.mmifds");
        write_v2(&good);
        let bytes = std::fs::read(&good).unwrap();
        let path = dir.join("bad.mmifds");
        let open = |b: &[u8]| {
            std::fs::write(&path, b).unwrap();
            Dataset::open(&path).map(|_| ())
        };
        // Every truncation.
        for n in 0..bytes.len() {
            assert!(open(&bytes[..n]).is_err(), "truncated to {n} bytes");
        }
        // Every header field, and the index, set to extreme values.
        let index_offset = u64::from_le_bytes(bytes[48..56].try_into().unwrap()) as usize;
        let mut offsets: Vec<usize> = (8..64).step_by(4).collect();
        offsets.extend((index_offset..index_offset + 64).step_by(4));
        for &o in &offsets {
            for v in [0u32, 1, 7, 0x7fff_ffff, u32::MAX] {
                let mut b = bytes.clone();
                b[o..o + 4].copy_from_slice(&v.to_le_bytes());
                let _ = open(&b); // must not panic; the result may be Ok for harmless fields
            }
        }
        // Specific corruptions that must be refused.
        let set = |o: usize, v: u64| {
            let mut b = bytes.clone();
            b[o..o + 8].copy_from_slice(&v.to_le_bytes());
            b
        };
        let msg = |b: &[u8]| open(b).unwrap_err().to_string();
        assert!(msg(&set(8, 3)).contains("unsupported version 3"));
        assert!(msg(&set(24, u64::MAX)).contains("inconsistent"), "record count");
        assert!(msg(&set(index_offset + 16, 65)).contains("record 1"), "an offset off by one");
        assert!(msg(&set(index_offset + 24, 0)).contains("record 1"), "zero tokens");
        assert!(msg(&set(index_offset + 8, u64::MAX / 2)).contains("record 0"), "huge token count");
        let mut b = bytes.clone();
        b[56..60].copy_from_slice(&0u32.to_le_bytes());
        assert!(msg(&b).contains("width 0"));
        let mut b = bytes.clone();
        let n = b.len();
        b[n - 2] = b'#';
        assert!(msg(&b).contains("metadata is not JSON"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
