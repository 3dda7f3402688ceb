//! Atomic file replacement: every writer of this crate builds its output in memory, writes it to a
//! temporary file in the target's directory and renames it over the target, so a reader never sees
//! a half-written file and a failed write leaves the previous file (if any) untouched.
//!
//! A process killed between creating and renaming its temporary file (`kill -9`, a power cut)
//! leaves the hidden temporary `.<name>.<pid>.<n>.tmp` behind, never a partial `<name>`;
//! [`remove_stale_temps`] deletes those of processes that no longer run.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::unsupported(path, "output path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.{n}.tmp", std::process::id()));
    Ok(dir.join(tmp))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
/// The temporary file is removed if anything fails. No fsync is done.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// The process id in the name of one of this module's temporary files (`.<name>.<pid>.<n>.tmp`).
fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let (n, pid, name) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Whether process `pid` is running. Only known on Linux (`/proc`); elsewhere every process
/// counts as running, so nothing is removed.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// Removes the temporary files that [`write_atomic`] left in `dir` when its process was killed
/// mid-write (their process no longer runs). Returns how many were removed. Other files, and the
/// temporary files of running processes, are left alone.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else { continue };
        if pid != std::process::id() && !process_alive(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_with_their_process() {
        let t = temp_path(Path::new("/x/out.v1.png")).unwrap();
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(name), Some(std::process::id()));
        for other in ["out.png", ".out.png", ".out.png.tmp", ".12.3.tmp", ".a.b.c.tmp", ".a.1.x.tmp"] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed_only() {
        let dir = std::env::temp_dir().join(format!("mmif-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 4294967295 is above Linux's largest pid (2^22), so no such process runs.
        let stale = dir.join(".a.png.4294967295.0.tmp");
        let own = dir.join(format!(".b.png.{}.0.tmp", std::process::id()));
        let keep = dir.join("a.png");
        for p in [&stale, &own, &keep] {
            std::fs::write(p, b"x").unwrap();
        }
        let removed = remove_stale_temps(&dir).unwrap();
        let (s, o, k) = (stale.exists(), own.exists(), keep.exists());
        std::fs::remove_dir_all(&dir).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!((removed, s), (1, false));
        }
        assert!(o && k);
    }
}
