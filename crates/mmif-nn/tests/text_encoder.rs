//! FILM's text encoder against Hugging Face transformers: `BertTokenizerFast` token ids and
//! `BertModel(...).last_hidden_state` (reference data made by `tests/data/text/generate.py`; the
//! random weights are the fixtures' deterministic fill, rebuilt here), and the checkpoint layouts
//! and errors of `mmif_nn::text`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmif_io::{SaveValue, TensorData};
use mmif_nn::text::checkpoint::{self, Layout};
use mmif_nn::text::{BertConfig, BertEncoder, TextEncoder, TextEncoderError, Tokenizer, TokenizerError};
use mmif_testkit::Scratch;
use mmif_testkit::compare::max_abs_diff;
use serde_json::Value;

const TOL: f32 = 1e-4;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/text").join(name)
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(data(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn paragraphs() -> Vec<String> {
    serde_json::from_value(json("paragraphs.json")).expect("a list of strings")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("a list of ids").iter().map(|x| x.as_u64().expect("an id") as u32).collect()
}

fn config(v: &Value) -> BertConfig {
    checkpoint::parse_config(v, true).expect("a BERT configuration")
}

/// The generator's weights: parameter `t` of `BertConfig::parameters` filled with `(seed, t)`.
fn filled(cfg: &BertConfig, seed: u64) -> BTreeMap<String, TensorData> {
    cfg.parameters()
        .into_iter()
        .enumerate()
        .map(|(t, (k, shape))| {
            let v = mmif_io::fill_value(&k, &shape, seed, t as u64, 1.0).expect("a filled parameter");
            (k, TensorData::f32(shape, v))
        })
        .collect()
}

fn encoder(cfg: &BertConfig, seed: u64) -> BertEncoder {
    let mut sd = filled(cfg, seed);
    BertEncoder::new(cfg.clone(), &common::device(), |k| sd.remove(k).expect("a parameter").data)
}

fn features(enc: &BertEncoder, ids: &[u32]) -> Vec<f32> {
    mmif_nn::weights::tensor_to_vec(enc.forward(ids).expect("encodes"))
}

fn check_tokenizer(file: &str) {
    let tok = Tokenizer::from_file(&data(file)).expect("reads the tokenizer");
    let want = json("tokens.json");
    assert_eq!(tok.vocab_size() as u64, want["vocab_size"].as_u64().unwrap());
    let paragraphs = paragraphs();
    assert!(paragraphs.len() >= 50);
    for (i, p) in paragraphs.iter().enumerate() {
        let full = ids(&want["full"][i]);
        assert_eq!(tok.ids(p, usize::MAX, false).expect("tokenizes"), full, "{file}, paragraph {i}: {p:?}");
        let cut = ids(&want["truncated_24"][i]);
        assert_eq!(tok.ids(p, 24, true).expect("tokenizes"), cut, "{file}, paragraph {i} truncated: {p:?}");
        match tok.ids(p, 24, false) {
            Ok(got) => assert!(full.len() <= 24 && got == full),
            Err(TokenizerError::TooLong { tokens, max: 24 }) => assert_eq!(tokens, full.len()),
            Err(e) => panic!("paragraph {i}: {e}"),
        }
    }
}

#[test]
fn tokenizer_json_gives_the_ids_of_bert_tokenizer_fast() {
    check_tokenizer("tokenizer.json");
}

#[test]
fn vocab_txt_gives_the_ids_of_bert_tokenizer_fast() {
    check_tokenizer("vocab.txt");
}

#[test]
fn empty_text_is_an_error() {
    let tok = Tokenizer::from_file(&data("tokenizer.json")).unwrap();
    for text in ["", "   ", "\n\t "] {
        assert!(matches!(tok.ids(text, 512, false), Err(TokenizerError::Empty)), "{text:?}");
    }
}

#[test]
fn small_config_matches_bert_model() {
    let meta = json("small.json");
    let cfg = config(&meta["config"]);
    let enc = encoder(&cfg, meta["seed"].as_u64().unwrap());
    let tokens = json("tokens.json");
    for (n, p) in meta["paragraphs"].as_array().unwrap().iter().enumerate() {
        let ids = ids(&tokens["full"][p.as_u64().unwrap() as usize]);
        let (shape, want) = mmif_io::read_npy_f32(&data(&format!("small_{n}.npy"))).unwrap();
        assert_eq!(shape, [ids.len(), cfg.hidden_size]);
        let d = max_abs_diff(&features(&enc, &ids), &want);
        eprintln!("small configuration, paragraph {p} (T = {}): max |Δ| = {d:e}", ids.len());
        assert!(d < TOL, "paragraph {p}: max |Δ| = {d}");
    }
}

#[test]
fn bert_base_shapes_match_bert_model() {
    let meta = json("base.json");
    let cfg = config(&meta["config"]);
    let enc = encoder(&cfg, meta["seed"].as_u64().unwrap());
    let ids = ids(&meta["ids"]);
    assert_eq!(ids.len(), 149);
    let got = features(&enc, &ids);
    let (shape, want) = mmif_io::read_npy_f32(&data("base_rows.npy")).unwrap();
    let h = cfg.hidden_size;
    let rows: Vec<usize> = meta["rows"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap() as usize).collect();
    assert_eq!(shape, [rows.len(), h]);
    for (i, r) in rows.iter().enumerate() {
        let d = max_abs_diff(&got[r * h..(r + 1) * h], &want[i * h..(i + 1) * h]);
        eprintln!("bert-base shapes, T = 149, row {r}: max |Δ| = {d:e}");
        assert!(d < TOL, "row {r}: max |Δ| = {d}");
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint layouts
// ---------------------------------------------------------------------------------------------

fn small() -> (BertConfig, BTreeMap<String, TensorData>) {
    let meta = json("small.json");
    let cfg = config(&meta["config"]);
    let sd = filled(&cfg, meta["seed"].as_u64().unwrap());
    (cfg, sd)
}

fn write_config(dir: &Scratch, cfg: &BertConfig, extra: Option<(&str, Value)>) {
    let mut v = serde_json::json!({
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_act": "gelu",
    });
    if let Some((key, value)) = extra {
        v = serde_json::json!({ key: value });
    }
    std::fs::write(dir.path("config.json"), v.to_string()).unwrap();
}

fn prefixed(sd: &BTreeMap<String, TensorData>, prefix: &str) -> BTreeMap<String, TensorData> {
    sd.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone())).collect()
}

/// The small model's features of paragraph 0 through `TextEncoder::load`.
fn encode_with(ckpt: &Path) -> Result<Vec<f32>, TextEncoderError> {
    let enc = TextEncoder::load(ckpt, Some(&data("tokenizer.json")), &common::device())?;
    Ok(enc.encode(&paragraphs()[0], 512, false)?.1)
}

fn small_want() -> Vec<f32> {
    mmif_io::read_npy_f32(&data("small_0.npy")).unwrap().1
}

#[test]
fn plain_bert_safetensors_with_bare_or_bert_keys() {
    let (cfg, sd) = small();
    for prefix in ["", "bert."] {
        let dir = Scratch::new("bert");
        write_config(&dir, &cfg, None);
        let mut keys = prefixed(&sd, prefix);
        // What BertForMaskedLM / BertModel also save: the pooler, the position-id buffer, a head.
        keys.insert(format!("{prefix}pooler.dense.weight"), TensorData::f32(vec![64, 64], vec![0.0; 4096]));
        keys.insert(format!("{prefix}embeddings.position_ids"), TensorData::f32(vec![1, 512], vec![0.0; 512]));
        keys.insert("cls.predictions.bias".into(), TensorData::f32(vec![3], vec![0.0; 3]));
        let ckpt = dir.path("model.safetensors");
        mmif_io::save_safetensors(&ckpt, &keys).unwrap();
        let d = max_abs_diff(&encode_with(&ckpt).expect("loads"), &small_want());
        assert!(d < TOL, "prefix {prefix:?}: max |Δ| = {d}");
    }
}

/// LAVIS's BLIP-2 `.pth`: `{"model": {"Qformer.bert.…": …}}`, with the Q-Former's cross-attention
/// and query feed-forward layers, which text encoding does not use.
#[test]
fn lavis_pth_layout() {
    let (cfg, sd) = small();
    let dir = Scratch::new("lavis");
    write_config(&dir, &cfg, None);
    let mut keys = prefixed(&sd, "Qformer.bert.");
    for l in 0..cfg.num_hidden_layers {
        let q = format!("Qformer.bert.encoder.layer.{l}");
        keys.insert(format!("{q}.crossattention.self.query.weight"), TensorData::f32(vec![4, 4], vec![1.0; 16]));
        keys.insert(format!("{q}.intermediate_query.dense.weight"), TensorData::f32(vec![4, 4], vec![1.0; 16]));
        keys.insert(format!("{q}.output_query.dense.bias"), TensorData::f32(vec![4], vec![1.0; 4]));
    }
    keys.insert("query_tokens".into(), TensorData::f32(vec![1, 2, 64], vec![0.0; 128]));
    keys.insert("text_proj.weight".into(), TensorData::f32(vec![8, 64], vec![0.0; 512]));
    let ckpt = dir.path("blip2_pretrained.pth");
    mmif_io::save_pth(&ckpt, &[("model".into(), SaveValue::state_dict(keys.iter(), ""))]).unwrap();
    let d = max_abs_diff(&encode_with(&ckpt).expect("loads"), &small_want());
    assert!(d < TOL, "max |Δ| = {d}");
    let src = mmif_io::TensorSource::open(&ckpt).unwrap();
    assert_eq!(checkpoint::locate(&src).unwrap(), Layout::Bert { prefix: "model.Qformer.bert.".into() });
}

/// Hugging Face BLIP-2 (`Blip2ForImageTextRetrieval` with the Q-Former's text input), sharded:
/// its own keys (`hf_blip2.json`, no token-type embedding, the embeddings' LayerNorm at
/// `qformer.layernorm`, self-attention at `attention.attention`), against
/// `qformer(embeddings(ids), query_length=0).last_hidden_state`.
#[test]
fn hugging_face_blip2_sharded_checkpoint() {
    let meta = json("hf_blip2.json");
    let dir = Scratch::new("hf-blip2");
    std::fs::write(
        dir.path("config.json"),
        serde_json::json!({ "qformer_config": meta["qformer_config"] }).to_string(),
    )
    .unwrap();
    let (mut first, mut second) = (BTreeMap::new(), BTreeMap::new());
    for (t, entry) in meta["keys"].as_array().unwrap().iter().enumerate() {
        let key = entry[0].as_str().unwrap().to_string();
        let shape: Vec<usize> = entry[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let v = mmif_io::fill_value(&key, &shape, meta["seed"].as_u64().unwrap(), t as u64, 1.0).unwrap();
        let shard = if key.starts_with("embeddings.") { &mut first } else { &mut second };
        shard.insert(key, TensorData::f32(shape, v));
    }
    first.insert("vision_model.embeddings.class_embedding".into(), TensorData::f32(vec![1, 1, 8], vec![0.0; 8]));
    let (a, b) = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
    mmif_io::save_safetensors(&dir.path(a), &first).unwrap();
    mmif_io::save_safetensors(&dir.path(b), &second).unwrap();
    let map: serde_json::Map<String, Value> = first
        .keys()
        .map(|k| (k.clone(), Value::from(a)))
        .chain(second.keys().map(|k| (k.clone(), Value::from(b))))
        .collect();
    std::fs::write(dir.path("model.safetensors.index.json"), serde_json::json!({ "weight_map": map }).to_string())
        .unwrap();
    let want = mmif_io::read_npy_f32(&data("hf_blip2.npy")).unwrap().1;
    let text = &paragraphs()[meta["paragraph"].as_u64().unwrap() as usize];
    for ckpt in [dir.0.clone(), dir.path("model.safetensors.index.json"), dir.path(a)] {
        let enc = TextEncoder::load(&ckpt, Some(&data("tokenizer.json")), &common::device())
            .unwrap_or_else(|e| panic!("{}: {e}", ckpt.display()));
        assert_eq!(enc.layout(), &Layout::HfBlip2 { prefix: String::new() });
        let d = max_abs_diff(&enc.encode(text, 512, false).unwrap().1, &want);
        assert!(d < TOL, "{}: max |Δ| = {d}", ckpt.display());
    }
}

#[test]
fn architecture_from_shapes_without_config_json() {
    let (cfg, sd) = small();
    let dir = Scratch::new("infer");
    let ckpt = dir.path("bert.safetensors");
    mmif_io::save_safetensors(&ckpt, &prefixed(&sd, "bert.")).unwrap();
    let src = mmif_io::TensorSource::open(&ckpt).unwrap();
    let layout = checkpoint::locate(&src).unwrap();
    let got = checkpoint::infer_config(&src, &layout).unwrap();
    // BERT's head size of 64: the 64-wide test model is taken as one head.
    assert_eq!(got, BertConfig { num_attention_heads: 1, ..cfg });
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn load_err(keys: &BTreeMap<String, TensorData>, cfg: &BertConfig, tokenizer: &Path) -> String {
    let dir = Scratch::new("err");
    write_config(&dir, cfg, None);
    let ckpt = dir.path("model.safetensors");
    mmif_io::save_safetensors(&ckpt, keys).unwrap();
    match TextEncoder::load(&ckpt, Some(tokenizer), &common::device()) {
        Ok(_) => panic!("loaded a bad checkpoint"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_or_misshaped_parameters_are_reported_and_nothing_loads() {
    let (cfg, sd) = small();
    let tok = data("tokenizer.json");
    let mut keys = sd.clone();
    keys.remove("encoder.layer.1.output.dense.bias");
    keys.insert("encoder.layer.0.attention.self.key.bias".into(), TensorData::f32(vec![3], vec![0.0; 3]));
    keys.insert("encoder.layer.2.output.dense.bias".into(), TensorData::f32(vec![64], vec![0.0; 64]));
    let e = load_err(&keys, &cfg, &tok);
    assert!(e.contains("1 missing, 1 unexpected, 1 mis-shaped"), "{e}");
    assert!(e.contains("encoder.layer.1.output.dense.bias") && e.contains("encoder.layer.2.output.dense.bias"), "{e}");
}

#[test]
fn a_checkpoint_without_text_embeddings_is_named() {
    let (cfg, sd) = small();
    // A generation-only BLIP-2: the Q-Former's layers without word embeddings or text FFN.
    let keys: BTreeMap<String, TensorData> = prefixed(&sd, "Qformer.bert.")
        .into_iter()
        .filter(|(k, _)| {
            !k.contains("word_embeddings") && !k.contains(".intermediate.") && !k.contains(".output.dense")
        })
        .collect();
    let e = load_err(&keys, &cfg, &data("tokenizer.json"));
    assert!(e.contains("not its text embeddings"), "{e}");
    let e =
        load_err(&BTreeMap::from([("x.weight".into(), TensorData::f32(vec![1], vec![0.0]))]), &cfg, &data("vocab.txt"));
    assert!(e.contains("no BERT text encoder"), "{e}");
}

#[test]
fn vocabulary_sizes_must_pair() {
    let (cfg, sd) = small();
    // One row more than the tokenizer: LAVIS's [DEC] token, added to the tokenizer.
    let mut lavis = cfg.clone();
    lavis.vocab_size += 1;
    let mut keys = sd.clone();
    let word = keys.get_mut("embeddings.word_embeddings.weight").unwrap();
    word.shape[0] += 1;
    word.data.extend(vec![0.5; 64]);
    let dir = Scratch::new("dec");
    write_config(&dir, &lavis, None);
    let ckpt = dir.path("model.safetensors");
    mmif_io::save_safetensors(&ckpt, &keys).unwrap();
    let enc = TextEncoder::load(&ckpt, Some(&data("tokenizer.json")), &common::device()).expect("loads with [DEC]");
    assert_eq!(enc.token_ids("[DEC] a", 512, false).unwrap()[1] as usize, cfg.vocab_size);
    let d = max_abs_diff(&enc.encode(&paragraphs()[0], 512, false).unwrap().1, &small_want());
    assert!(d < TOL, "max |Δ| = {d}");
    // Two rows more: not a pair.
    let mut other = lavis.clone();
    other.vocab_size += 1;
    let word = keys.get_mut("embeddings.word_embeddings.weight").unwrap();
    word.shape[0] += 1;
    word.data.extend(vec![0.5; 64]);
    let e = load_err(&keys, &other, &data("tokenizer.json"));
    assert!(e.contains("2000 tokens but the text encoder's vocabulary has 2002"), "{e}");
}

#[test]
fn text_over_the_position_limit_is_an_error() {
    let (mut cfg, sd) = small();
    cfg.max_position_embeddings = 32;
    let mut keys = sd.clone();
    let pos = keys.get_mut("embeddings.position_embeddings.weight").unwrap();
    pos.shape[0] = 32;
    pos.data.truncate(32 * 64);
    let dir = Scratch::new("limit");
    write_config(&dir, &cfg, None);
    let ckpt = dir.path("model.safetensors");
    mmif_io::save_safetensors(&ckpt, &keys).unwrap();
    let enc = TextEncoder::load(&ckpt, Some(&data("tokenizer.json")), &common::device()).unwrap();
    let long = paragraphs().last().unwrap().clone();
    let e = enc.encode(&long, 512, false).unwrap_err().to_string();
    assert!(e.contains("over the limit of 32"), "{e}");
    let (t, v) = enc.encode(&long, 512, true).unwrap();
    assert_eq!((t, v.len()), (32, 32 * 64));
}
