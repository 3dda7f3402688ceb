//! BERT's WordPiece tokenizer through Hugging Face's `tokenizers` crate, from a `tokenizer.json`
//! (what `BertTokenizerFast.save_pretrained` writes) or a `vocab.txt` (taken as uncased, as
//! `BertTokenizer` reads bert-base-uncased's: clean text, split CJK characters, lowercase and
//! strip accents, split punctuation, WordPiece, `[CLS] … [SEP]`).
//!
//! A tokenizer's own truncation and padding settings are switched off: a text longer than the
//! limit is an error unless the caller asks for truncation ([`Tokenizer::ids`]), which then cuts
//! the way `tokenizer(text, truncation=True, max_length=N)` does (word pieces dropped from the end,
//! `[SEP]` kept).

use std::path::{Path, PathBuf};

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, TruncationDirection, TruncationParams, TruncationStrategy};

/// The token LAVIS adds to bert-base-uncased as BLIP-2's beginning-of-sentence (id 30522).
pub const LAVIS_DEC: &str = "[DEC]";

/// Why a tokenizer cannot be built or a text cannot be tokenized.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: cannot read the tokenizer: {msg}")]
    Read { path: PathBuf, msg: String },
    #[error(
        "{path}: the tokenizer has {tokenizer} tokens but the text encoder's vocabulary has {encoder}: they are not a pair \
         (BERT's is 30522, LAVIS's BLIP-2 30523 with its added [DEC] token)"
    )]
    VocabMismatch { path: PathBuf, tokenizer: usize, encoder: usize },
    #[error("the text is empty (nothing but white space)")]
    Empty,
    #[error(
        "the text is {tokens} tokens long ([CLS] and [SEP] included), over the limit of {max}: shorten it, raise \
         --max-tokens (at most the encoder's position limit) or pass --truncate to keep the first {max}"
    )]
    TooLong { tokens: usize, max: usize },
    #[error("cannot tokenize the text: {0}")]
    Encode(String),
}

/// A BERT WordPiece tokenizer whose vocabulary matches a text encoder's.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Read { path: path.to_path_buf(), msg: e.to_string() }
}

impl Tokenizer {
    /// Reads `tokenizer.json` or `vocab.txt` (by content: a JSON object is a `tokenizer.json`).
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let text = std::fs::read_to_string(path).map_err(|e| read_err(path, e))?;
        let mut inner = if text.trim_start().starts_with('{') {
            tokenizers::Tokenizer::from_file(path).map_err(|e| read_err(path, e))?
        } else {
            Self::bert_uncased(path)?
        };
        inner.with_truncation(None).map_err(|e| read_err(path, e))?;
        inner.with_padding(None);
        Ok(Self { inner, path: path.to_path_buf() })
    }

    /// bert-base-uncased's tokenizer around a `vocab.txt`.
    fn bert_uncased(path: &Path) -> Result<tokenizers::Tokenizer, TokenizerError> {
        let vocab = path.to_str().ok_or_else(|| read_err(path, "the path is not UTF-8"))?;
        let model = WordPiece::from_file(vocab).unk_token("[UNK]".into()).build().map_err(|e| read_err(path, e))?;
        let mut tk = tokenizers::Tokenizer::new(model);
        let id = |tk: &tokenizers::Tokenizer, t: &str| {
            tk.token_to_id(t).ok_or_else(|| read_err(path, format!("the vocabulary has no {t} token")))
        };
        let (cls, sep) = (id(&tk, "[CLS]")?, id(&tk, "[SEP]")?);
        tk.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
        tk.with_pre_tokenizer(Some(BertPreTokenizer));
        tk.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
        let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .into_iter()
            .filter(|t| tk.token_to_id(t).is_some())
            .map(|t| AddedToken::from(t, true))
            .collect();
        tk.add_special_tokens(&specials);
        Ok(tk)
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Checks the vocabulary against a text encoder's: equal sizes, or LAVIS's case — the
    /// encoder has one row more and the tokenizer lacks `[DEC]` — where `[DEC]` is added as
    /// LAVIS's `add_special_tokens({"bos_token": "[DEC]"})` does.
    pub fn match_vocab(&mut self, encoder: usize) -> Result<(), TokenizerError> {
        let tokenizer = self.vocab_size();
        if tokenizer + 1 == encoder && self.inner.token_to_id(LAVIS_DEC).is_none() {
            self.inner.add_special_tokens(&[AddedToken::from(LAVIS_DEC, true)]);
        }
        if self.vocab_size() != encoder {
            return Err(TokenizerError::VocabMismatch { path: self.path.clone(), tokenizer, encoder });
        }
        Ok(())
    }

    /// The token ids of `text`, `[CLS]` and `[SEP]` included: at most `max` of them, or an error
    /// when there are more, unless `truncate`.
    pub fn ids(&self, text: &str, max: usize, truncate: bool) -> Result<Vec<u32>, TokenizerError> {
        if text.trim().is_empty() {
            return Err(TokenizerError::Empty);
        }
        let enc = |tk: &tokenizers::Tokenizer| {
            tk.encode(text, true).map(|e| e.get_ids().to_vec()).map_err(|e| TokenizerError::Encode(e.to_string()))
        };
        let ids = enc(&self.inner)?;
        if ids.len() <= max {
            return Ok(ids);
        }
        if !truncate {
            return Err(TokenizerError::TooLong { tokens: ids.len(), max });
        }
        let mut tk = self.inner.clone();
        let params = TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        };
        tk.with_truncation(Some(params)).map_err(|e| TokenizerError::Encode(e.to_string()))?;
        enc(&tk)
    }
}
