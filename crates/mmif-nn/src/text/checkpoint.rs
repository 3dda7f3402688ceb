//! Finding a BERT text encoder in a checkpoint by its keys, and its architecture.
//!
//! | layout | keys | where it comes from |
//! |---|---|---|
//! | plain BERT | `embeddings.*`, `encoder.layer.N.*`, under any prefix: none, `bert.` (`BertForMaskedLM`, …), `Qformer.bert.` / `model.Qformer.bert.` (LAVIS BLIP-2 `.pth`: `{"model": state_dict}`) | Hugging Face `BertModel`, LAVIS |
//! | Hugging Face BLIP-2 | `embeddings.{word,position}_embeddings.weight` beside `qformer.layernorm.*` (the embeddings' LayerNorm) and `qformer.encoder.layer.N.*`, self-attention at `attention.attention.*` | `Blip2ForImageTextRetrieval`, `Blip2TextModelWithProjection` |
//!
//! The Q-Former's cross-attention and query feed-forward layers (`crossattention.*`,
//! `intermediate_query.*`, `output_query.*`), the `position_ids` buffer and BERT's pooler are not
//! part of the text encoder and are passed over; any other key under the encoder's prefix that
//! the architecture does not have is reported as unexpected, and nothing is loaded unless every
//! parameter is present with its shape.
//!
//! The architecture comes from the Hugging Face `config.json` beside the checkpoint (BLIP-2's
//! `qformer_config` inside it), else from the tensor shapes with BERT's head size of 64.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmif_io::TensorSource;

use super::TextEncoderError;
use super::bert::BertConfig;
use crate::LoadError;

const WORD: &str = "embeddings.word_embeddings.weight";
const FIRST_QUERY: &str = "encoder.layer.0.attention.self.query.weight";

/// Where the encoder's tensors are in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Plain BERT keys after `prefix` (`""`, `"bert."`, `"model.Qformer.bert."`, …).
    Bert { prefix: String },
    /// Hugging Face BLIP-2: embeddings at `prefix + "embeddings."`, their LayerNorm at
    /// `prefix + "qformer.layernorm."`, layers at `prefix + "qformer.encoder."` with the
    /// self-attention's projections at `attention.attention.` (BERT's `attention.self.`).
    HfBlip2 { prefix: String },
}

impl Layout {
    /// The file's key for a plain BERT key (see [`BertConfig::parameters`]).
    pub fn file_key(&self, key: &str) -> String {
        match self {
            Layout::Bert { prefix } => format!("{prefix}{key}"),
            Layout::HfBlip2 { prefix } => match key.strip_prefix("embeddings.LayerNorm.") {
                Some(rest) => format!("{prefix}qformer.layernorm.{rest}"),
                None if key.starts_with("encoder.") => {
                    format!("{prefix}qformer.{}", key.replacen(".attention.self.", ".attention.attention.", 1))
                }
                None => format!("{prefix}{key}"),
            },
        }
    }

    /// Whether a file key lies under the encoder's prefixes (so an unknown one is unexpected).
    fn owns(&self, file_key: &str) -> bool {
        let under = |p: &str, parts: &[&str]| parts.iter().any(|s| file_key.starts_with(&format!("{p}{s}")));
        match self {
            Layout::Bert { prefix } => under(prefix, &["embeddings.", "encoder."]),
            Layout::HfBlip2 { prefix } => under(prefix, &["embeddings.", "qformer.layernorm.", "qformer.encoder."]),
        }
    }
}

/// Keys under the encoder's prefix that text encoding does not use.
fn unused_by_text(file_key: &str) -> bool {
    file_key.contains(".crossattention.")
        || file_key.contains(".intermediate_query.")
        || file_key.contains(".output_query.")
        || file_key.ends_with("position_ids")
        || file_key.ends_with("token_type_ids")
}

/// Finds the encoder's layout from the checkpoint's keys.
pub fn locate(src: &TensorSource) -> Result<Layout, TextEncoderError> {
    let path = src.path();
    let mut found = Vec::new();
    for (name, _) in src.shapes() {
        let Some(prefix) = name.strip_suffix(WORD) else { continue };
        if src.shape(&format!("{prefix}{FIRST_QUERY}")).is_some() {
            found.push(Layout::Bert { prefix: prefix.to_string() });
        } else {
            let hf = Layout::HfBlip2 { prefix: prefix.to_string() };
            if src.shape(&hf.file_key(FIRST_QUERY)).is_some() {
                found.push(hf);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let qformer =
                src.shapes().any(|(n, _)| n.contains("Qformer.bert.encoder.") || n.contains("qformer.encoder."));
            let msg = if qformer {
                "it has a BLIP-2 Q-Former but not its text embeddings (no `…embeddings.word_embeddings.weight`): a \
                 generation-only checkpoint (LAVIS blip2_opt/blip2_t5, Hugging Face Blip2ForConditionalGeneration) \
                 drops the Q-Former's text side. Use LAVIS's Q-Former checkpoint (blip2_pretrained.pth, \
                 model_type pretrain) or a Hugging Face Blip2ForImageTextRetrieval checkpoint"
                    .to_string()
            } else {
                format!(
                    "no BERT text encoder in it: no tensor named `…{WORD}` next to `…{FIRST_QUERY}` (expected a BERT, \
                     LAVIS BLIP-2 or Hugging Face BLIP-2 checkpoint)"
                )
            };
            Err(TextEncoderError::Layout { path: path.to_path_buf(), msg })
        }
        _ => Err(TextEncoderError::Layout {
            path: path.to_path_buf(),
            msg: format!("it holds {} text encoders ({found:?}); keep one in the file", found.len()),
        }),
    }
}

/// The `config.json` beside a checkpoint (or inside a checkpoint folder), if there is one.
pub fn config_beside(path: &Path) -> Option<PathBuf> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    Some(dir.join("config.json")).filter(|p| p.is_file())
}

/// The architecture from a Hugging Face `config.json` (a `BertConfig`, or a `Blip2Config` whose
/// `qformer_config` is used); the token-type rows only when the checkpoint has that embedding.
pub fn read_config(path: &Path, token_types: bool) -> Result<BertConfig, TextEncoderError> {
    let bad = |msg: String| TextEncoderError::Config { path: path.to_path_buf(), msg };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let root: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    parse_config(&root, token_types).map_err(bad)
}

/// [`read_config`] on parsed JSON: Hugging Face's `BertConfig` fields, its defaults for absent
/// ones (bert-base).
pub fn parse_config(root: &serde_json::Value, token_types: bool) -> Result<BertConfig, String> {
    let cfg = root.get("qformer_config").unwrap_or(root);
    let size = |key: &str, default: usize| -> Result<usize, String> {
        match cfg.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{key}` must be a positive integer, found {v}")),
        }
    };
    let text_field = |key: &str, default: &str| cfg.get(key).and_then(|v| v.as_str()).unwrap_or(default).to_string();
    let act = text_field("hidden_act", "gelu");
    if act != "gelu" {
        return Err(format!("hidden_act `{act}`: only BERT's exact GELU (`gelu`) is supported"));
    }
    let pos = text_field("position_embedding_type", "absolute");
    if pos != "absolute" {
        return Err(format!("position_embedding_type `{pos}`: only `absolute` is supported"));
    }
    let eps = match cfg.get("layer_norm_eps") {
        None => 1e-12,
        Some(v) => v.as_f64().filter(|e| *e > 0.0).ok_or_else(|| format!("bad layer_norm_eps {v}"))?,
    };
    let config = BertConfig {
        vocab_size: size("vocab_size", 30522)?,
        hidden_size: size("hidden_size", 768)?,
        num_hidden_layers: size("num_hidden_layers", 12)?,
        num_attention_heads: size("num_attention_heads", 12)?,
        intermediate_size: size("intermediate_size", 3072)?,
        max_position_embeddings: size("max_position_embeddings", 512)?,
        type_vocab_size: if token_types { size("type_vocab_size", 2)? } else { 0 },
        layer_norm_eps: eps,
    };
    if !config.hidden_size.is_multiple_of(config.num_attention_heads) {
        return Err(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        ));
    }
    Ok(config)
}

/// The architecture from the tensor shapes (no `config.json`): BERT's head size of 64 and
/// LayerNorm ε of 1e-12.
pub fn infer_config(src: &TensorSource, layout: &Layout) -> Result<BertConfig, TextEncoderError> {
    let bad = |msg: String| TextEncoderError::Config { path: src.path().to_path_buf(), msg };
    let shape = |key: &str| src.shape(&layout.file_key(key)).map(<[usize]>::to_vec);
    let word = shape(WORD).unwrap_or_default();
    let [vocab_size, hidden_size] = word[..] else {
        return Err(bad(format!("{WORD} has shape {word:?}, not vocabulary × hidden")));
    };
    let rows = |key: &str| shape(key).and_then(|s| s.first().copied());
    let max_position_embeddings =
        rows("embeddings.position_embeddings.weight").ok_or_else(|| bad("no position embeddings".into()))?;
    let num_hidden_layers =
        (0..).take_while(|l| shape(&format!("encoder.layer.{l}.attention.self.query.weight")).is_some()).count();
    let intermediate_size = rows("encoder.layer.0.intermediate.dense.weight").ok_or_else(|| {
        bad("no `encoder.layer.0.intermediate.dense.weight`: the checkpoint lacks the text feed-forward layers".into())
    })?;
    if !hidden_size.is_multiple_of(64) {
        return Err(bad(format!(
            "hidden size {hidden_size} is not a multiple of BERT's head size 64; put the model's config.json beside \
             the checkpoint"
        )));
    }
    Ok(BertConfig {
        vocab_size,
        hidden_size,
        num_hidden_layers,
        num_attention_heads: hidden_size / 64,
        intermediate_size,
        max_position_embeddings,
        type_vocab_size: rows("embeddings.token_type_embeddings.weight").unwrap_or(0),
        layer_norm_eps: 1e-12,
    })
}

/// Reads exactly the encoder's tensors, all or nothing: every parameter of `config` by its plain
/// BERT key, or the missing/unexpected/mis-shaped report.
pub fn read_parameters(
    src: &TensorSource,
    layout: &Layout,
    config: &BertConfig,
) -> Result<BTreeMap<String, Vec<f32>>, TextEncoderError> {
    let mut err = LoadError::default();
    let expected = config.parameters();
    let wanted: std::collections::BTreeSet<String> = expected.iter().map(|(k, _)| layout.file_key(k)).collect();
    for (key, shape) in &expected {
        match src.shape(&layout.file_key(key)) {
            None => err.missing.push((key.clone(), shape.clone())),
            Some(s) if s != shape.as_slice() => err.mismatched.push((key.clone(), shape.clone(), s.to_vec())),
            Some(_) => {}
        }
    }
    for (name, shape) in src.shapes() {
        if layout.owns(name) && !wanted.contains(name) && !unused_by_text(name) {
            err.unexpected.push((name.to_string(), shape.to_vec()));
        }
    }
    if !(err.missing.is_empty() && err.unexpected.is_empty() && err.mismatched.is_empty()) {
        return Err(TextEncoderError::Fit { path: src.path().to_path_buf(), source: err });
    }
    let mut out = BTreeMap::new();
    for (key, _) in expected {
        out.insert(key.clone(), src.read(&layout.file_key(&key))?.data);
    }
    Ok(out)
}
