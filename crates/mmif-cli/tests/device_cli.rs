//! `--device`: a device the build lacks is refused with the feature to build with; with the `wgpu`
//! feature (CI: Mesa's software Vulkan driver, lavapipe), `mmif fuse` and `mmif train` on wgpu
//! agree with the CPU, and a wgpu training run checkpoints and resumes.

mod common;

use common::{mmif, stderr};

#[test]
fn unknown_device_is_refused() {
    let o = mmif(["bench", "-m", "cddfuse", "--size", "32x32", "--runs", "1", "--device", "tpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown device `tpu`"), "{}", stderr(&o));
    let o = mmif(["bench", "-m", "cddfuse", "--size", "32x32", "--runs", "1", "--device", "cuda:x"]);
    assert!(!o.status.success() && stderr(&o).contains("bad device index"), "{}", stderr(&o));
    let o = mmif(["bench", "-m", "cddfuse", "--size", "32x32", "--runs", "1", "--precision", "f16"]);
    assert!(!o.status.success() && stderr(&o).contains("for GPU devices"), "{}", stderr(&o));
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_without_the_feature_names_it() {
    let o = mmif(["bench", "-m", "cddfuse", "--size", "32x32", "--runs", "1", "--device", "wgpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--features wgpu"), "{}", stderr(&o));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_names_it() {
    let o = mmif(["bench", "-m", "cddfuse", "--size", "32x32", "--runs", "1", "--device", "cuda:0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--features cuda"), "{}", stderr(&o));
}

#[cfg(feature = "wgpu")]
mod on_wgpu {
    use super::*;
    use crate::common::{Scratch, filled_weights, loss_lines, ok, pairs, read_npy, tiny_patches};

    #[test]
    fn bench_reports_the_wgpu_device() {
        let o = mmif(["bench", "-m", "cddfuse", "--size", "32x48", "--runs", "1", "--device", "wgpu", "--json"]);
        ok(&o, "bench on wgpu");
        let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let device = rows[0]["device"].as_str().unwrap();
        assert!(device.starts_with("wgpu: "), "{device}");
    }

    #[test]
    fn fuse_on_wgpu_equals_cpu() {
        let s = Scratch::new("device_fuse");
        pairs(&s, 1, 40, 32); // EMMA takes 32×32 and larger
        // The model's name on the command line and its manifest in forward_meta.json.
        for (model, manifest) in [("cddfuse", "cddfuse"), ("emma", "emma_ufuser")] {
            let w = filled_weights(&s, manifest);
            let mut out = Vec::new();
            for device in ["cpu", "wgpu"] {
                let npy = s.path(&format!("{model}-{device}.npy"));
                let w = w.display().to_string();
                let o = mmif([
                    "fuse",
                    "-m",
                    model,
                    "-w",
                    &w,
                    "--ir",
                    &s.s("ir/p0.png"),
                    "--vis",
                    &s.s("vis/p0.png"),
                    "-o",
                    &s.s(&format!("{model}-{device}.npy")),
                    "--device",
                    device,
                ]);
                ok(&o, &format!("fuse {model} on {device}"));
                out.push(read_npy(&npy).1);
            }
            // The forward parity tolerance of the networks (1e-4 on [0, 1] outputs).
            let d = crate::common::max_abs_diff(&out[0], &out[1]);
            assert!(d <= 1e-4, "{model}: wgpu differs from cpu by {d}");
        }
    }

    /// `mmif train -m cddfuse --device wgpu`: its first step's loss terms equal the CPU run's to
    /// the one-step fixture tolerance (1e-4 relative), it checkpoints, and it resumes to the end.
    #[test]
    fn cddfuse_trains_checkpoints_and_resumes_on_wgpu() {
        let s = Scratch::new("device_train");
        tiny_patches(&s);
        let train = |run: &str, device: &str, extra: &[&str]| {
            let mut a: Vec<String> = ["train", "-m", "cddfuse", "--data", &s.s("d.mmifds"), "-o", &s.s(run)]
                .iter()
                .map(|x| x.to_string())
                .collect();
            a.extend(["--device".to_string(), device.to_string()]);
            a.extend(extra.iter().map(|x| x.to_string()));
            mmif(a)
        };
        let cfg = ["--epochs", "2", "--epoch-gap", "1", "--batch", "2"];
        ok(&train("cpu", "cpu", &[&cfg[..], &["--max-steps", "1"]].concat()), "train on cpu");
        ok(&train("gpu", "wgpu", &[&cfg[..], &["--max-steps", "1"]].concat()), "train on wgpu");
        let (cpu, gpu) = (loss_lines(&s.path("cpu/loss.jsonl")), loss_lines(&s.path("gpu/loss.jsonl")));
        assert_eq!((cpu.len(), gpu.len()), (1, 1));
        let terms = cpu[0]["losses"].as_object().expect("loss terms");
        assert!(!terms.is_empty());
        for (k, want) in terms {
            let (want, got) = (want.as_f64().unwrap(), gpu[0]["losses"][k].as_f64().unwrap());
            assert!((got - want).abs() <= 1e-4 * want.abs().max(1e-12), "loss {k}: wgpu {got}, cpu {want}");
        }
        // Each module's global gradient norm before clipping, to the fixtures' 1e-3 relative.
        let norms = cpu[0]["grad_norm"].as_object().expect("gradient norms");
        assert!(!norms.is_empty());
        for (g, want) in norms {
            let (want, got) = (want.as_f64().unwrap(), gpu[0]["grad_norm"][g].as_f64().unwrap());
            assert!((got - want).abs() <= 1e-3 * want.abs().max(1e-12), "grad norm {g}: wgpu {got}, cpu {want}");
        }
        assert!(s.path("gpu/latest.json").is_file(), "a checkpoint after --max-steps");
        // Resume on wgpu to the end of the run: 3 steps per epoch, 2 epochs.
        ok(&train("gpu", "wgpu", &["--resume"]), "resume on wgpu");
        let log = loss_lines(&s.path("gpu/loss.jsonl"));
        assert_eq!(log.len(), 6);
        assert_eq!(log[5]["stage"], "II");
        for f in ["cddfuse.safetensors", "model/ckpt_2.safetensors", "pic_fusion/ckpt_2/batch-0.png"] {
            assert!(s.path("gpu").join(f).is_file(), "{f} missing");
        }
        let params: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.path("gpu/params.json")).unwrap()).unwrap();
        assert!(params["provenance"]["device"].as_str().is_some_and(|d| d.starts_with("wgpu")));
    }
}
