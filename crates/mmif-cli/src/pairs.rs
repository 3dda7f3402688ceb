//! Source images named by modality, and pairing of folders by file stem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

/// The fusion task implied by the source flags (`--ir`/`--vis`: `Ivf`, …).
pub use mmif_fuse::Task;

/// The two source images (or folders), named by modality. The first of each pair is source
/// `a` (infrared, MRI, over-exposed, near-focused), the second source `b` (visible, CT/PET/SPECT,
/// under-exposed, far-focused). Each model maps `a`/`b` to its own inputs as its official test
/// script does.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Infrared image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub ir: Option<PathBuf>,
    /// Visible image (gray or colour)
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub vis: Option<PathBuf>,
    /// MRI image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub mri: Option<PathBuf>,
    /// Functional / other medical image: CT, PET or SPECT (gray or colour)
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub func: Option<PathBuf>,
    /// Over-exposed image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub over: Option<PathBuf>,
    /// Under-exposed image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub under: Option<PathBuf>,
    /// Near-focused image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub near: Option<PathBuf>,
    /// Far-focused image
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub far: Option<PathBuf>,
    /// Generic first source
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub a: Option<PathBuf>,
    /// Generic second source
    #[arg(long, value_name = "FILE", help_heading = "Sources (one pair)")]
    pub b: Option<PathBuf>,

    /// Folder of infrared images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub ir_dir: Option<PathBuf>,
    /// Folder of visible images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub vis_dir: Option<PathBuf>,
    /// Folder of MRI images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub mri_dir: Option<PathBuf>,
    /// Folder of CT/PET/SPECT images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub func_dir: Option<PathBuf>,
    /// Folder of over-exposed images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub over_dir: Option<PathBuf>,
    /// Folder of under-exposed images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub under_dir: Option<PathBuf>,
    /// Folder of near-focused images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub near_dir: Option<PathBuf>,
    /// Folder of far-focused images
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub far_dir: Option<PathBuf>,
    /// Folder of generic first sources
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub a_dir: Option<PathBuf>,
    /// Folder of generic second sources
    #[arg(long, value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub b_dir: Option<PathBuf>,
}

/// What the source flags resolved to.
#[derive(Clone, Debug)]
pub enum Sources {
    Single { task: Task, a: PathBuf, b: PathBuf },
    Folders { task: Task, a: PathBuf, b: PathBuf },
}

impl SourceArgs {
    /// Checks that exactly one pair of files or one pair of folders was given.
    pub fn resolve(&self) -> Result<Sources> {
        let files = [
            (Task::Ivf, &self.ir, &self.vis),
            (Task::Mif, &self.mri, &self.func),
            (Task::Mef, &self.over, &self.under),
            (Task::Mff, &self.near, &self.far),
            (Task::Generic, &self.a, &self.b),
        ];
        let dirs = [
            (Task::Ivf, &self.ir_dir, &self.vis_dir),
            (Task::Mif, &self.mri_dir, &self.func_dir),
            (Task::Mef, &self.over_dir, &self.under_dir),
            (Task::Mff, &self.near_dir, &self.far_dir),
            (Task::Generic, &self.a_dir, &self.b_dir),
        ];
        let mut found = Vec::new();
        for (task, a, b) in files {
            let (na, nb) = task.names();
            match (a, b) {
                (Some(a), Some(b)) => found.push(Sources::Single { task, a: a.clone(), b: b.clone() }),
                (Some(_), None) => bail!("--{na} needs its partner --{nb}"),
                (None, Some(_)) => bail!("--{nb} needs its partner --{na}"),
                (None, None) => {}
            }
        }
        for (task, a, b) in dirs {
            let (na, nb) = task.names();
            match (a, b) {
                (Some(a), Some(b)) => found.push(Sources::Folders { task, a: a.clone(), b: b.clone() }),
                (Some(_), None) => bail!("--{na}-dir needs its partner --{nb}-dir"),
                (None, Some(_)) => bail!("--{nb}-dir needs its partner --{na}-dir"),
                (None, None) => {}
            }
        }
        match found.len() {
            0 => bail!(
                "no source images given: name two by modality, e.g. --ir A --vis B (or --mri/--func, --over/--under, \
                 --near/--far, --a/--b), or two folders with --ir-dir/--vis-dir …"
            ),
            1 => Ok(found.pop().expect("one")),
            _ => bail!("give one pair of sources (files or folders), not several"),
        }
    }
}

/// File extensions read as images (or exact `.npy` inputs).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "npy"];

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Image files of a folder by stem. Two files with one stem are an error.
pub fn list_images(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read folder {}", dir.display()))?.path();
        if !path.is_file() || !is_image(&path) {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if let Some(prev) = out.insert(stem.clone(), path.clone()) {
            bail!("two images with the stem `{stem}` in {}: {} and {}", dir.display(), prev.display(), path.display());
        }
    }
    Ok(out)
}

/// Pairs of files found in both folders, plus the stems found in only one (`(stem, folder)`).
pub struct Paired {
    pub pairs: Vec<(String, PathBuf, PathBuf)>,
    pub unpaired: Vec<(String, PathBuf)>,
}

/// Pairs the images of two folders by stem.
pub fn pair_folders(a: &Path, b: &Path) -> Result<Paired> {
    let la = list_images(a)?;
    let mut lb = list_images(b)?;
    let mut pairs = Vec::new();
    let mut unpaired = Vec::new();
    for (stem, pa) in la {
        match lb.remove(&stem) {
            Some(pb) => pairs.push((stem, pa, pb)),
            None => unpaired.push((stem, a.to_path_buf())),
        }
    }
    unpaired.extend(lb.into_keys().map(|s| (s, b.to_path_buf())));
    Ok(Paired { pairs, unpaired })
}
