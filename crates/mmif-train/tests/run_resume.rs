//! A training run interrupted and resumed reproduces the uninterrupted run exactly, and its
//! outputs (weights, log, samples, checkpoints) are in place.

mod common;

use std::path::Path;

use mmif_nn::cddfuse::CddFuse;
use mmif_nn::weights;
use mmif_train::cddfuse::{CddFuseConfig, CddFuseTrainer};
use mmif_train::dataset::{Dataset, DatasetWriter};
use mmif_train::run::{RunOptions, run};

fn tiny_dataset(path: &Path, n: usize, hw: usize) {
    let mut w = DatasetWriter::create(path, 2, hw, hw).unwrap();
    for i in 0..n {
        let a: Vec<f32> = mmif_io::uniform_pm1(9, i as u64, hw * hw).iter().map(|v| 0.5 + 0.4 * v).collect();
        let b: Vec<f32> = mmif_io::uniform_pm1(10, i as u64, hw * hw).iter().map(|v| 0.3 + 0.3 * v).collect();
        w.push(&[&a, &b]).unwrap();
    }
    w.finish(&serde_json::json!({"test": true})).unwrap();
}

fn losses(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("loss.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            // The only field that may differ between runs.
            assert!(v.as_object_mut().unwrap().remove("step_seconds").is_some_and(|t| t.as_f64().unwrap() > 0.0));
            v
        })
        .collect()
}

#[test]
fn interrupted_and_resumed_run_matches_uninterrupted_run() {
    let scratch = mmif_testkit::Scratch::new("run-resume");
    let root = scratch.0.clone();
    let data_path = root.join("d.mmifds");
    tiny_dataset(&data_path, 5, 16);
    let device = common::device().autodiff();
    // One fixed starting point for both runs.
    let init = weights::state_dict(&CddFuse::new(&common::device()));
    let config = CddFuseConfig { epochs: 2, epoch_gap: 1, batch: 2, ..CddFuseConfig::default() };
    let opts = |out: &str, max_steps| RunOptions {
        seed: 7,
        out: root.join(out),
        checkpoint_every: 2,
        sample_batches: 2,
        max_steps,
        provenance: serde_json::json!({"test": "run_resume"}),
        stop: None,
    };
    let sd = weights::canonicalize(&init, None);
    let trainer = || CddFuseTrainer::from_state_dict(&sd, config.clone(), &device).unwrap();

    let mut data = Dataset::open(&data_path).unwrap();
    let full = run(&mut trainer(), &mut data, &opts("full", None), false, &device, |_| {}).unwrap();
    assert_eq!(full.global_step, 6, "5 patches in batches of 2: 3 steps per epoch, 2 epochs");

    // Interrupted after step 4 (inside the second, phase-II epoch), then resumed.
    let part = run(&mut trainer(), &mut data, &opts("part", Some(4)), false, &device, |_| {}).unwrap();
    assert_eq!((part.epoch, part.batch, part.global_step), (1, 1, 4));
    // Resuming starts from a trainer in another state (other weights, other hyper-parameters):
    // everything comes from the checkpoint.
    let other = CddFuseConfig { lr: 0.5, ..CddFuseConfig::default() };
    let mut fresh = CddFuseTrainer::new(CddFuse::new(&device), other, &device);
    let resumed = run(&mut fresh, &mut data, &opts("part", None), true, &device, |_| {}).unwrap();
    assert_eq!(resumed, full, "the final run state (lrs, schedulers, Adam steps) differs");

    let (a, b) = (losses(&root.join("full")), losses(&root.join("part")));
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "the resumed run's losses differ from the uninterrupted run's");
    assert_eq!(a[4]["stage"], "II");

    // The final weights are identical and load as a CDDFuse checkpoint.
    let wa = mmif_io::load_checkpoint(&root.join("full/cddfuse.safetensors")).unwrap().tensors;
    let last_epoch = mmif_io::load_checkpoint(&root.join("full/model/ckpt_2.safetensors")).unwrap().tensors;
    assert_eq!(wa, last_epoch, "the last epoch's checkpoint holds the final weights");
    let wb = mmif_io::load_checkpoint(&root.join("part/cddfuse.safetensors")).unwrap().tensors;
    assert_eq!(wa, wb);
    let plain = common::device();
    weights::load_file(CddFuse::new(&plain), &root.join("full/cddfuse.safetensors"), None, &plain).unwrap();
    let log = std::fs::read_to_string(root.join("part/log.txt")).unwrap();
    assert_eq!(log.lines().count(), 2, "one line per epoch, also across the resume:\n{log}");
    // The epoch means of the resumed run are those of the uninterrupted one (the times differ).
    let strip = |s: String| s.lines().map(|l| l.split_once(" epoch ").unwrap().1.to_string()).collect::<Vec<_>>();
    assert_eq!(strip(log), strip(std::fs::read_to_string(root.join("full/log.txt")).unwrap()));
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("full/params.json")).unwrap()).unwrap();
    assert_eq!(params["model"], "cddfuse");
    assert_eq!(params["dataset"]["sha1"].as_str().map(str::len), Some(40));
    for f in [
        "params.json",
        "latest.json",
        "log.txt",
        "model/ckpt_1.safetensors",
        "pic_fusion/ckpt_1/batch-0.png",
        "pic_fusion/ckpt_2/batch-1.png",
    ] {
        assert!(root.join("full").join(f).is_file(), "{f} missing");
    }
    let kept = std::fs::read_dir(root.join("full/checkpoints")).unwrap().count();
    assert_eq!(kept, 2, "only the two newest checkpoints are kept");
}
