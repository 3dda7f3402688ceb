//! Text features from plain text: the BLIP-2 Q-Former's text encoder (a BERT encoder) and BERT's
//! WordPiece tokenizer, so that FILM can be guided by any description.
//!
//! | file | job |
//! |---|---|
//! | `bert.rs` | [`BertEncoder`]: embeddings, N post-LN encoder layers, the last hidden state |
//! | `tokenizer.rs` | [`Tokenizer`]: WordPiece from a `tokenizer.json` or `vocab.txt`, the vocabulary check, the length limit |
//! | `checkpoint.rs` | the encoder's keys in BERT, LAVIS BLIP-2 and Hugging Face BLIP-2 checkpoints; the architecture from `config.json` or from shapes |
//!
//! [`TextEncoder::encode`] gives what LAVIS's `extract_features(caption, mode="text")` calls
//! `text_embeds` (before its 256-d projection) for one text: `T×hidden` with `T` the number of
//! tokens, `[CLS]` and `[SEP]` included — the `(1, T, 768)` of FILM's `TextFeature` files.

pub mod bert;
pub mod checkpoint;
pub mod tokenizer;

use std::path::{Path, PathBuf};

pub use bert::{BertConfig, BertEncoder, EncodeError};
pub use checkpoint::Layout;
pub use tokenizer::{Tokenizer, TokenizerError};

use burn::tensor::Device;

use crate::LoadError;

/// Why a text encoder cannot be loaded or a text cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum TextEncoderError {
    #[error(transparent)]
    Read(#[from] mmif_io::Error),
    #[error("{path}: {msg}")]
    Layout { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{path}: the text encoder does not fit: {source}")]
    Fit {
        path: PathBuf,
        #[source]
        source: LoadError,
    },
    #[error(
        "no tokenizer: pass --tokenizer tokenizer.json|vocab.txt, or put one of them beside {0} (BLIP-2 uses \
         bert-base-uncased's)"
    )]
    NoTokenizer(PathBuf),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A tokenizer and the BERT encoder whose vocabulary it matches.
pub struct TextEncoder {
    bert: BertEncoder,
    tokenizer: Tokenizer,
    layout: Layout,
}

/// The tokenizer file beside a checkpoint: `tokenizer.json`, else `vocab.txt`.
fn tokenizer_beside(checkpoint: &Path) -> Option<PathBuf> {
    let dir = if checkpoint.is_dir() { checkpoint } else { checkpoint.parent()? };
    ["tokenizer.json", "vocab.txt"].into_iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

impl TextEncoder {
    /// Loads the encoder of `checkpoint` (any layout of [`checkpoint`], reading only its
    /// tensors) and the tokenizer `tokenizer` (default: the one beside the checkpoint), and
    /// checks that their vocabularies match.
    pub fn load(checkpoint: &Path, tokenizer: Option<&Path>, device: &Device) -> Result<Self, TextEncoderError> {
        let tokenizer_path = match tokenizer {
            Some(p) => p.to_path_buf(),
            None => tokenizer_beside(checkpoint).ok_or_else(|| TextEncoderError::NoTokenizer(checkpoint.into()))?,
        };
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)?;
        let src = mmif_io::TensorSource::open(checkpoint)?;
        let layout = checkpoint::locate(&src)?;
        let token_types = src.shape(&layout.file_key("embeddings.token_type_embeddings.weight")).is_some();
        let config = match checkpoint::config_beside(checkpoint) {
            Some(json) => checkpoint::read_config(&json, token_types)?,
            None => checkpoint::infer_config(&src, &layout)?,
        };
        let mut params = checkpoint::read_parameters(&src, &layout, &config)?;
        drop(src);
        tokenizer.match_vocab(config.vocab_size)?;
        let bert = BertEncoder::new(config, device, |k| params.remove(k).unwrap_or_default());
        Ok(Self { bert, tokenizer, layout })
    }

    /// The encoder's architecture.
    pub fn config(&self) -> &BertConfig {
        self.bert.config()
    }

    /// Where the encoder was found in the checkpoint.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Width of one token's features.
    pub fn dim(&self) -> usize {
        self.config().hidden_size
    }

    /// The most tokens a text may have: the position-embedding limit.
    pub fn max_positions(&self) -> usize {
        self.config().max_position_embeddings
    }

    /// The token ids of `text` (see [`Tokenizer::ids`]); `max` is capped at [`Self::max_positions`].
    pub fn token_ids(&self, text: &str, max: usize, truncate: bool) -> Result<Vec<u32>, TextEncoderError> {
        Ok(self.tokenizer.ids(text, max.min(self.max_positions()), truncate)?)
    }

    /// The features of `text`: `T` rows of [`Self::dim`] values.
    pub fn encode(&self, text: &str, max: usize, truncate: bool) -> Result<(usize, Vec<f32>), TextEncoderError> {
        let ids = self.token_ids(text, max, truncate)?;
        Ok((ids.len(), self.encode_ids(&ids)?))
    }

    /// The features of token ids (special tokens included), row-major `T×dim`.
    pub fn encode_ids(&self, ids: &[u32]) -> Result<Vec<f32>, TextEncoderError> {
        Ok(crate::weights::tensor_to_vec(self.bert.forward(ids)?))
    }
}
