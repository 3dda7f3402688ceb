//! `mmif prepare` and `mmif train` end to end on tiny synthetic data: every procedure runs,
//! writes its run folder, resumes, and its weights load in `mmif fuse`; bad input is refused
//! with a clear message and no output.

mod common;

use common::{Scratch, emma_data, film_data, loss_lines, mmif, ok, stderr, tiny_patches};

/// `mmif fuse` of one pair of the scratch folder with trained weights (and text for FILM).
fn fuse_trained(s: &Scratch, model: &str, weights: &str, ir: &str, vis: &str, text: Option<&str>, what: &str) {
    let mut a = vec!["fuse".to_string(), "-m".into(), model.into(), "-w".into(), s.s(weights)];
    a.extend(["--ir".to_string(), s.s(ir), "--vis".into(), s.s(vis), "-o".into(), s.s("f.png")]);
    if let Some(t) = text {
        a.extend(["--text".to_string(), s.s(t)]);
    }
    ok(&mmif(a), what);
}

#[test]
fn cddfuse_prepare_train_resume_and_fuse() {
    let s = Scratch::new("cddfuse");
    let o = tiny_patches(&s);
    // 40×24 with 16/16: corners x ∈ {0, 16}, y ∈ {0} → 2 windows per pair.
    assert!(stderr(&o).contains("6 patches"), "{}", stderr(&o));
    let run = s.s("run");
    let train = |extra: &[&str]| {
        let data = s.s("d.mmifds");
        let mut a =
            vec!["train".to_string(), "-m".into(), "cddfuse".into(), "--data".into(), data, "-o".into(), run.clone()];
        a.extend(extra.iter().map(|x| x.to_string()));
        mmif(a)
    };
    ok(&train(&["--epochs", "2", "--epoch-gap", "1", "--batch", "2", "--max-steps", "4"]), "train");
    assert_eq!(loss_lines(&s.path("run/loss.jsonl")).len(), 4);
    // A second start into the same folder is refused without --force.
    let o = train(&["--epochs", "2"]);
    assert!(!o.status.success() && stderr(&o).contains("--resume"), "{}", stderr(&o));
    ok(&train(&["--resume"]), "resume");
    let log = loss_lines(&s.path("run/loss.jsonl"));
    assert_eq!(log.len(), 6, "3 steps per epoch, 2 epochs");
    assert_eq!(log[5]["stage"], "II");
    for f in [
        "params.json",
        "log.txt",
        "model/ckpt_2.safetensors",
        "pic_fusion/ckpt_2/batch-0.png",
        "latest.json",
        "loss.svg",
        "loss.png",
    ] {
        assert!(s.path("run").join(f).is_file(), "{f} missing");
    }
    // the loss plot follows the run: both epochs' means are in it; `mmif plot` redraws it
    let svg = std::fs::read_to_string(s.path("run/loss.svg")).unwrap();
    assert!(svg.contains("6 steps, 2 epochs"), "the plot was drawn at the last epoch end");
    std::fs::remove_file(s.path("run/loss.png")).unwrap();
    ok(&mmif(["plot", run.as_str()]), "plot");
    assert!(s.path("run/loss.png").is_file());
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("run/params.json")).unwrap()).unwrap();
    assert!(params["provenance"]["command_line"].as_array().is_some_and(|a| a.len() > 3));
    assert_eq!(params["config"]["batch"], 2);
    // The trained weights fuse, and convert to the official .pth layout.
    fuse_trained(
        &s,
        "cddfuse",
        "run/cddfuse.safetensors",
        "ir/p0.png",
        "vis/p0.png",
        None,
        "fuse with the trained weights",
    );
    ok(&mmif(["convert", &s.s("run/cddfuse.safetensors"), &s.s("w.pth")]), "convert to .pth");
    // The official layout: four module groups with `module.` keys; it loads back to the same weights.
    let back = mmif_io::load_checkpoint(&s.path("w.pth")).unwrap().tensors;
    let mine = mmif_io::load_checkpoint(&s.path("run/cddfuse.safetensors")).unwrap().tensors;
    assert_eq!(back.len(), mine.len());
    assert!(back.keys().all(|k| k.contains(".module.")), "DataParallel keys expected");
    assert_eq!(mmif_nn::weights::canonicalize(&back, None), mmif_nn::weights::canonicalize(&mine, None));
}

#[test]
fn emma_pseudo_sensors_then_ufuser() {
    let s = Scratch::new("emma");
    let (ai, av, d) = emma_data(&s);
    let x = s.s("x.mmifds");
    let (f, ir, vis) = (s.s("fused"), s.s("ir"), s.s("vis"));
    let o = mmif(["prepare", "-o", &x, "--patch", "32", "--fused", &f, "--ir", &ir, "--vis", &vis]);
    assert!(!o.status.success() && stderr(&o).contains("one source folder"), "{}", stderr(&o));

    for (model, data, dir) in [("emma-ai", &ai, "run_ai"), ("emma-av", &av, "run_av")] {
        let o = mmif(["train", "-m", model, "--data", data, "-o", &s.s(dir), "--epochs", "1", "--batch", "4"]);
        ok(&o, model);
        assert!(s.path(dir).join(format!("{model}.safetensors")).is_file());
    }
    let u = s.s("run_u");
    let o = mmif([
        "train",
        "-m",
        "emma",
        "--data",
        &d,
        "-o",
        &u,
        "--ai",
        &s.s("run_ai/emma-ai.safetensors"),
        "--av",
        &s.s("run_av/emma-av.safetensors"),
        "--epochs",
        "2",
        "--batch",
        "2",
        "--max-steps",
        "2",
    ]);
    ok(&o, "emma");
    // Resuming needs no --ai/--av: the run folder holds its pseudo-sensors.
    ok(&mmif(["train", "-m", "emma", "--data", &d, "-o", &u, "--resume"]), "emma resume");
    assert_eq!(loss_lines(&s.path("run_u/loss.jsonl")).len(), 4);
    fuse_trained(
        &s,
        "emma",
        "run_u/emma.safetensors",
        "ir/p1.png",
        "vis/p1.png",
        None,
        "fuse with the trained U-Fuser",
    );
    // Without pseudo-sensors the U-Fuser cannot be trained.
    let o = mmif(["train", "-m", "emma", "--data", &d, "-o", &s.s("run_x")]);
    assert!(!o.status.success() && stderr(&o).contains("--ai"), "{}", stderr(&o));
}

#[test]
fn film_needs_text_and_trains_with_it() {
    let s = Scratch::new("film");
    let d = film_data(&s, 2, 32, 32);
    let plain = s.s("plain.mmifds");
    ok(&mmif(["prepare", "--ir", &s.s("ir"), "--vis", &s.s("vis"), "--patch", "32", "-o", &plain]), "prepare");
    let o = mmif(["train", "-m", "film", "--data", &plain, "-o", &s.s("run_bad")]);
    assert!(!o.status.success() && stderr(&o).contains("text"), "{}", stderr(&o));
    let o = mmif(["train", "-m", "film", "--data", &d, "-o", &s.s("run"), "--epochs", "1"]);
    ok(&o, "film");
    for f in ["film.safetensors", "model/ckpt_1.safetensors", "pic_fusion/ckpt_1/batch-0.png", "log.txt"] {
        assert!(s.path("run").join(f).is_file(), "{f} missing");
    }
    fuse_trained(
        &s,
        "film",
        "run/film.safetensors",
        "ir/p0.png",
        "vis/p0.png",
        Some("text/p0.npy"),
        "fuse with the trained FILM",
    );
    // Both official layouts: PyTorch `.pth` and the Jittor port's `.pkl`.
    for out in ["w.pth", "w.pkl"] {
        ok(&mmif(["convert", &s.s("run/film.safetensors"), &s.s(out)]), out);
        let back = mmif_io::load_checkpoint(&s.path(out)).unwrap().tensors;
        let sd = mmif_nn::weights::canonicalize(&back, Some("model"));
        let mine = mmif_io::load_checkpoint(&s.path("run/film.safetensors")).unwrap().tensors;
        assert_eq!(sd, mmif_nn::weights::canonicalize(&mine, None), "{out}");
    }
    assert_eq!(loss_lines(&s.path("run/loss.jsonl")).len(), 1, "2 pairs, batch 2");
}
