//! `mmif text-encode`, `mmif fuse -m film --text-encoder … --caption…` and `mmif prepare
//! --caption-dir` end to end, on the random BERT checkpoints of mmif-nn's text-encoder tests
//! (`crates/mmif-nn/tests/data/text`: Hugging Face `BertModel` outputs, the fixtures' fill as
//! weights).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Scratch, fixtures, max_abs_diff, mmif_dyn as mmif, read_npy, stderr};
use mmif_io::TensorData;
use mmif_nn::text::BertConfig;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mmif-nn/tests/data/text").join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(name)).expect("read")).expect("JSON")
}

fn paragraph(i: usize) -> String {
    json("paragraphs.json")[i].as_str().expect("a paragraph").to_string()
}

/// Writes `cfg`'s filled weights (seed `seed`, keys under `prefix`) as `dir/name` with the
/// Hugging Face config.json beside it.
fn checkpoint(dir: &Scratch, name: &str, cfg: &BertConfig, seed: u64, prefix: &str) -> PathBuf {
    let sd: BTreeMap<String, TensorData> = cfg
        .parameters()
        .into_iter()
        .enumerate()
        .map(|(t, (k, shape))| {
            let v = mmif_io::fill_value(&k, &shape, seed, t as u64, 1.0).expect("filled");
            (format!("{prefix}{k}"), TensorData::f32(shape, v))
        })
        .collect();
    let path = dir.path(name);
    mmif_io::save_safetensors(&path, &sd).expect("write the checkpoint");
    let c = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads, "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings, "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "pad_token_id": 0, "position_embedding_type": "absolute" });
    std::fs::write(dir.path("config.json"), c.to_string()).expect("write config.json");
    path
}

type Arg<'a> = &'a dyn AsRef<OsStr>;

/// `mmif text-encode --text-encoder CKPT [--tokenizer TOK] ARGS…`.
fn text_encode(ckpt: &Path, tok: Option<&Path>, args: &[Arg]) -> Output {
    let mut all: Vec<Arg> = vec![&"text-encode", &"--text-encoder", &ckpt];
    if let Some(t) = &tok {
        all.extend([&"--tokenizer" as Arg, t]);
    }
    all.extend_from_slice(args);
    mmif(&all)
}

/// The small configuration of the reference data and its seed.
fn small() -> (BertConfig, u64) {
    let m = json("small.json");
    let cfg = mmif_nn::text::checkpoint::parse_config(&m["config"], true).expect("a BERT configuration");
    (cfg, m["seed"].as_u64().expect("seed"))
}

/// A 768-wide (FILM's width) one-layer encoder for the fusion tests.
fn film_width() -> BertConfig {
    BertConfig {
        vocab_size: small().0.vocab_size,
        hidden_size: 768,
        num_hidden_layers: 1,
        num_attention_heads: 12,
        intermediate_size: 32,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
    }
}

#[test]
fn text_encode_gives_bert_model_last_hidden_state() {
    let (cfg, seed) = small();
    let picks = json("small.json")["paragraphs"].clone();
    for prefix in ["", "bert."] {
        let s = Scratch::new("encode");
        let ckpt = checkpoint(&s, "CKPT.safetensors", &cfg, seed, prefix);
        std::fs::copy(data("tokenizer.json"), s.path("tokenizer.json")).unwrap();
        for (n, p) in picks.as_array().unwrap().iter().enumerate() {
            let text = paragraph(p.as_u64().unwrap() as usize);
            std::fs::write(s.path("P.txt"), &text).unwrap();
            let out = s.path(&format!("out{n}.npy"));
            let o = text_encode(
                &ckpt,
                Some(&s.path("tokenizer.json")),
                &[&"--caption-file", &s.path("P.txt"), &"-o", &out],
            );
            assert!(o.status.success(), "{}", stderr(&o));
            let (shape, got) = read_npy(&out);
            let (wshape, want) = read_npy(&data(&format!("small_{n}.npy")));
            assert_eq!(shape, [1, wshape[0], wshape[1]]);
            let d = max_abs_diff(&got, &want);
            assert!(d < 1e-4, "prefix {prefix:?}, paragraph {p}: max |Δ| = {d}");
        }
        // --caption, and the tokenizer found beside the checkpoint.
        let out = s.path("inline.npy");
        let o = text_encode(&ckpt, None, &[&"--caption", &paragraph(0), &"-o", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(read_npy(&out), read_npy(&s.path("out0.npy")));
    }
}

#[test]
fn text_encode_folder_mode_and_errors() {
    let (cfg, seed) = small();
    let s = Scratch::new("encode-dir");
    let ckpt = checkpoint(&s, "model.safetensors", &cfg, seed, "");
    let tok = data("vocab.txt");
    std::fs::create_dir_all(s.path("captions")).unwrap();
    std::fs::write(s.path("captions/a.txt"), paragraph(0)).unwrap();
    std::fs::write(s.path("captions/b.txt"), "  \n ").unwrap();
    std::fs::write(s.path("captions/c.txt"), paragraph(8)).unwrap();
    let o = text_encode(&ckpt, Some(&tok), &[&"--caption-dir", &s.path("captions"), &"--out-dir", &s.path("out")]);
    assert!(!o.status.success(), "an empty caption must fail the run");
    let err = stderr(&o);
    assert!(err.contains("b:") && err.contains("empty"), "{err}");
    assert!(!s.path("out/b.npy").exists());
    let (_, a) = read_npy(&s.path("out/a.npy"));
    assert!(max_abs_diff(&a, &read_npy(&data("small_0.npy")).1) < 1e-4);
    let (_, c) = read_npy(&s.path("out/c.npy"));
    assert!(max_abs_diff(&c, &read_npy(&data("small_1.npy")).1) < 1e-4);

    let out = s.path("x.npy");
    let run = |extra: &[Arg]| text_encode(&ckpt, Some(&tok), &[&[&"-o" as Arg, &out], extra].concat());
    let fails = |o: std::process::Output, needle: &str| {
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "expected `{needle}` in: {}", stderr(&o));
        assert!(!out.exists(), "no output may be written on error");
    };
    fails(run(&[&"--caption", &""]), "empty");
    fails(run(&[&"--caption", &paragraph(0), &"--max-tokens", &"8"]), "over the limit of 8");
    fails(run(&[&"--caption", &paragraph(0), &"--max-tokens", &"513"]), "position limit of 512");
    fails(run(&[&"--caption-file", &s.path("absent.txt")]), "absent.txt");
    // A tokenizer whose vocabulary is not the checkpoint's.
    let mut other = cfg.clone();
    other.vocab_size = 3000;
    let o2 = Scratch::new("other-vocab");
    let bad = checkpoint(&o2, "model.safetensors", &other, seed, "");
    let o = text_encode(&bad, Some(&tok), &[&"--caption", &"a", &"-o", &out]);
    fails(o, "2000 tokens but the text encoder's vocabulary has 3000");
    // A checkpoint without a text encoder.
    let film = s.path("film.safetensors");
    mmif_io::save_safetensors(&film, &fixtures::filled("film")).unwrap();
    let o = text_encode(&film, Some(&tok), &[&"--caption", &"a", &"-o", &out]);
    fails(o, "no BERT text encoder");
    // --truncate keeps the first tokens, with a note.
    let o = run(&[&"--caption", &paragraph(0), &"--max-tokens", &"8", &"--truncate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("truncated to 8"), "{}", stderr(&o));
    assert_eq!(read_npy(&out).0, [1, 8, 64]);
    // An existing output is kept without --force.
    fails2(run(&[&"--caption", &paragraph(0)]), "--force");
}

fn fails2(o: std::process::Output, needle: &str) {
    assert!(!o.status.success());
    assert!(stderr(&o).contains(needle), "expected `{needle}` in: {}", stderr(&o));
}

/// FILM's weights (the fixtures' fill) and a pair of the fixtures' inputs.
fn film_setup(s: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
    let weights = s.path("film.safetensors");
    let sd = mmif_nn::weights::canonicalize(&fixtures::filled("film"), Some("model"));
    mmif_io::save_safetensors(&weights, &sd).expect("write the FILM weights");
    let (shape, _) = fixtures::npy("film_ivf_odd_fused.npy");
    let (ir, _) = fixtures::input("ivf_ir", &shape, 0);
    let (vis, _) = fixtures::input("ivf_vi", &shape, 0);
    (weights, ir, vis)
}

#[test]
fn fuse_with_a_caption_equals_text_encode_then_fuse_with_text() {
    let s = Scratch::new("fuse-caption");
    let (weights, ir, vis) = film_setup(&s);
    let enc_dir = Scratch::new("fuse-caption-encoder");
    let enc = checkpoint(&enc_dir, "encoder.safetensors", &film_width(), 3, "bert.");
    let tok = data("tokenizer.json");
    std::fs::write(s.path("P.txt"), paragraph(1)).unwrap();
    let o = text_encode(&enc, Some(&tok), &[&"--caption-file", &s.path("P.txt"), &"-o", &s.path("text.npy")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fuse = |extra: &[Arg], out: &str| {
        let mut args: Vec<Arg> = vec![&"fuse", &"-m", &"film", &"-w", &weights, &"--ir", &ir, &"--vis", &vis];
        args.extend_from_slice(extra);
        let out = s.path(out);
        args.push(&"-o");
        args.push(&out);
        let o = mmif(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(&out).expect("the fused image")
    };
    let want = fuse(&[&"--text", &s.path("text.npy")], "text.png");
    let got =
        fuse(&[&"--text-encoder", &enc, &"--tokenizer", &tok, &"--caption-file", &s.path("P.txt")], "caption.png");
    assert_eq!(got, want, "fuse --caption-file differs from text-encode + fuse --text");
    let got = fuse(&[&"--text-encoder", &enc, &"--tokenizer", &tok, &"--caption", &paragraph(1)], "inline.png");
    assert_eq!(got, want, "fuse --caption differs from text-encode + fuse --text");

    // Folder mode: one caption per stem; a stem without one fails alone.
    for sub in ["ir", "vis", "captions", "out"] {
        std::fs::create_dir_all(s.path(sub)).unwrap();
    }
    for stem in ["p1", "p2"] {
        std::fs::copy(&ir, s.path(&format!("ir/{stem}.npy"))).unwrap();
        std::fs::copy(&vis, s.path(&format!("vis/{stem}.npy"))).unwrap();
    }
    std::fs::write(s.path("captions/p1.txt"), paragraph(1)).unwrap();
    let o = mmif(&[
        &"fuse",
        &"-m",
        &"film",
        &"-w",
        &weights,
        &"--ir-dir",
        &s.path("ir"),
        &"--vis-dir",
        &s.path("vis"),
        &"--text-encoder",
        &enc,
        &"--tokenizer",
        &tok,
        &"--caption-dir",
        &s.path("captions"),
        &"--out-dir",
        &s.path("out"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no caption for `p2`"), "{}", stderr(&o));
    assert_eq!(std::fs::read(s.path("out/p1.png")).unwrap(), want);
    assert!(!s.path("out/p2.png").exists());

    // A 64-wide encoder does not fit FILM.
    let (cfg, seed) = small();
    let narrow_dir = Scratch::new("narrow");
    let narrow = checkpoint(&narrow_dir, "narrow.safetensors", &cfg, seed, "");
    let narrow_out = s.path("narrow.png");
    let o = mmif(
        &[
            &[&"fuse" as Arg, &"-m", &"film", &"-w", &weights, &"--ir", &ir, &"--vis", &vis, &"-o", &narrow_out],
            &[&"--text-encoder" as Arg, &narrow, &"--tokenizer", &tok, &"--caption", &"a"][..],
        ]
        .concat(),
    );
    fails2(o, "64-wide");
    assert!(!s.path("narrow.png").exists());
}

#[test]
fn prepare_with_captions_equals_prepare_with_encoded_text() {
    let s = Scratch::new("prepare-captions");
    let enc_dir = Scratch::new("prepare-encoder");
    let enc = checkpoint(&enc_dir, "encoder.safetensors", &film_width(), 3, "");
    let tok = data("tokenizer.json");
    for sub in ["ir", "vis", "captions"] {
        std::fs::create_dir_all(s.path(sub)).unwrap();
    }
    for i in 0..2u32 {
        let img = |phase: f32| {
            image::GrayImage::from_fn(32, 32, |x, y| image::Luma([((x * 7 + y * 3) as f32 * phase) as u8]))
        };
        img(1.0 + i as f32).save(s.path(&format!("ir/p{i}.png"))).unwrap();
        img(2.5 + i as f32).save(s.path(&format!("vis/p{i}.png"))).unwrap();
        std::fs::write(s.path(&format!("captions/p{i}.txt")), paragraph(27 + i as usize)).unwrap();
    }
    let o = text_encode(&enc, Some(&tok), &[&"--caption-dir", &s.path("captions"), &"--out-dir", &s.path("text")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (ir, vis) = (s.path("ir"), s.path("vis"));
    let prepare = |extra: &[Arg], out: &str| {
        let out = s.path(out);
        let mut args: Vec<Arg> = vec![&"prepare", &"--ir-dir", &ir, &"--vis-dir", &vis, &"--size", &"full"];
        args.extend_from_slice(extra);
        args.push(&"-o");
        args.push(&out);
        let o = mmif(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut ds = mmif_train::dataset::Dataset::open(&out).expect("the dataset");
        (0..ds.len).map(|i| (ds.get(i).unwrap(), ds.text(i).unwrap().map(|t| (t.tokens, t.data)))).collect::<Vec<_>>()
    };
    let want = prepare(&[&"--text-dir", &s.path("text")], "text.mmifds");
    let got = prepare(
        &[&"--text-encoder", &enc, &"--tokenizer", &tok, &"--caption-dir", &s.path("captions")],
        "captions.mmifds",
    );
    assert_eq!(want.len(), 2);
    assert_eq!(got, want, "prepare --caption-dir differs from text-encode + prepare --text-dir");
    // the metadata names the captions and the encoder, not the removed temporary folder
    let meta = mmif_train::dataset::Dataset::open(&s.path("captions.mmifds")).expect("the dataset").metadata;
    let origin = meta["text_dir"].as_str().expect("text_dir");
    assert!(
        origin.starts_with("captions in ") && origin.contains("captions") && !origin.contains(".mmif-text"),
        "{origin}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&s.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".mmif-text"))
        .collect();
    assert!(leftovers.is_empty(), "the temporary text folder must be removed");
}
