//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`,
//! including every input that once crashed a target) through the same code as the fuzz targets,
//! on the stable toolchain: a regression of any reader shows here without libFuzzer.

use mmif_testkit::fuzz::{TARGETS, corpus_dir};

#[test]
fn every_fuzz_target_survives_its_committed_corpus() {
    for (name, target) in TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the corpus of `{name}` is missing ({}): {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the corpus of `{name}` is empty ({})", dir.display());
        for f in &files {
            let data = std::fs::read(f).expect("corpus file");
            let ok = std::panic::catch_unwind(|| target(&data));
            assert!(ok.is_ok(), "`{name}` panicked on {}", f.display());
        }
    }
}

#[test]
fn the_hostile_files_are_refused_by_the_image_targets() {
    // The declared-size files of `hostile` go through the targets' code without decoding.
    for ext in mmif_testkit::hostile::FORMATS {
        let data = mmif_testkit::hostile::declaring(ext, 30000, 30000);
        let err =
            mmif_io::image_io::read_image_bytes(std::path::Path::new("x"), &data, mmif_io::Limits::pixels(1 << 16))
                .expect_err(ext);
        assert!(matches!(err, mmif_io::Error::TooLarge { .. }), "{ext}: {err}");
        mmif_testkit::fuzz::image(&data);
        mmif_testkit::fuzz::eval(&data);
    }
}

#[test]
fn the_mmifds_seeds_are_valid_datasets() {
    // The seeds of `fuzz/make_seeds.py` must open, or the fuzzer starts from rejected inputs only.
    let dir = corpus_dir("mmifds");
    for (name, version, records, text) in [("v1", 1, 3, false), ("v2_uniform", 2, 2, true), ("v2_ragged", 2, 3, true)] {
        let scratch = std::env::temp_dir().join(format!("mmifds-seed-{}-{name}", std::process::id()));
        std::fs::copy(dir.join(name), &scratch).expect("copy the seed");
        let mut ds = mmif_io::dataset::Dataset::open(&scratch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((ds.version, ds.len, ds.text_dim.is_some()), (version, records, text), "{name}");
        assert!(ds.get(records - 1).is_ok() && ds.text(records - 1).is_ok(), "{name}");
        std::fs::remove_file(&scratch).expect("remove the copy");
    }
}
