//! Text features for text-guided models (FILM): `--text FILE.npy` for one pair, `--text-dir DIR`
//! (one `<stem>.npy` per pair) in folder mode.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Width of one text token (BLIP-2 features, as the FILM checkpoints expect).
pub const TEXT_DIM: usize = mmif_nn::film::TEXT_DIM;

/// Where the text features of FILM come from, for error messages.
pub const TEXT_HELP: &str = "FILM is guided by text features of each scene: a float32 .npy of shape T×768 or 1×T×768 \
     (the BLIP-2 embedding of the scene's description, as shipped in the TextFeature/<task>/<dataset>/<stem>.npy \
     folders of the authors' VLF dataset). Pass --text FILE.npy for one pair, or --text-dir DIR (files named \
     <stem>.npy like the images) for folders; or describe the pair in words: --text-encoder CKPT (BLIP-2's \
     Q-Former or a BERT checkpoint) with --caption \"…\", --caption-file FILE or --caption-dir DIR (<stem>.txt)";

/// One pair's text features: `tokens` rows of [`TEXT_DIM`] values.
#[derive(Clone, Debug)]
pub struct TextFeatures {
    pub tokens: usize,
    pub data: Vec<f32>,
}

/// Reads a `.npy` of text features, checking its shape and values.
pub fn read_text(path: &Path) -> Result<TextFeatures> {
    let (shape, data) = mmif_io::read_npy_f32(path)?;
    TextFeatures::new(&shape, data, &path.display().to_string())
}

impl TextFeatures {
    /// Text features from an array of `shape` (T×768 or 1×T×768), checking the shape and that
    /// every value is finite; `what` names the array in error messages.
    pub fn new(shape: &[usize], data: Vec<f32>, what: &str) -> Result<TextFeatures> {
        let tokens = match shape {
            [t, d] | [1, t, d] if *d == TEXT_DIM && *t > 0 => *t,
            _ => bail!(
                "{what}: text features must have shape T×{TEXT_DIM} or 1×T×{TEXT_DIM} (T ≥ 1 tokens), found {shape:?}"
            ),
        };
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            bail!("{what}: text features contain a non-finite value at flat index {i}");
        }
        Ok(TextFeatures { tokens, data })
    }
}

/// The text features of the pair `stem` in `dir`: `dir/<stem>.npy`.
pub fn text_for_stem(dir: &Path, stem: &str) -> Result<TextFeatures> {
    let path: PathBuf = dir.join(format!("{stem}.npy"));
    if !path.is_file() {
        bail!(
            "no text features for `{stem}`: {} does not exist (--text-dir needs one <stem>.npy per pair)",
            path.display()
        );
    }
    read_text(&path)
}
