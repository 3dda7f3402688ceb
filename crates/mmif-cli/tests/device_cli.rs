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
    use crate::common::{Scratch, emma_data, filled_weights, film_data, loss_lines, ok, pairs, read_npy, tiny_patches};

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

    /// Runs `mmif train ARGS --max-steps 1` on the CPU into `cpu_run` and on wgpu into `gpu_run` and
    /// checks that the first step agrees to the one-step fixture tolerances: every loss term to 1e-4
    /// relative, each module's global gradient norm before clipping to 1e-3 relative. The initial
    /// weights come from `--seed` (drawn on the CPU for every device), so both runs start alike.
    fn first_steps_agree(s: &Scratch, model: &str, args: &[&str], cpu_run: &str, gpu_run: &str) {
        let train = |run: &str, device: &str| {
            let mut a: Vec<String> = ["train", "-m", model, "-o", &s.s(run), "--device", device, "--max-steps", "1"]
                .iter()
                .map(|x| x.to_string())
                .collect();
            a.extend(args.iter().map(|x| x.to_string()));
            mmif(a)
        };
        ok(&train(cpu_run, "cpu"), &format!("train {model} on cpu"));
        ok(&train(gpu_run, "wgpu"), &format!("train {model} on wgpu"));
        let (cpu, gpu) = (
            loss_lines(&s.path(&format!("{cpu_run}/loss.jsonl"))),
            loss_lines(&s.path(&format!("{gpu_run}/loss.jsonl"))),
        );
        assert_eq!((cpu.len(), gpu.len()), (1, 1), "{model}: one step each");
        for (field, tol) in [("losses", 1e-4), ("grad_norm", 1e-3)] {
            let want = cpu[0][field].as_object().unwrap_or_else(|| panic!("{model}: no {field}"));
            assert!(!want.is_empty(), "{model}: empty {field}");
            for (k, w) in want {
                let (w, g) = (w.as_f64().unwrap(), gpu[0][field][k].as_f64().unwrap());
                assert!((g - w).abs() <= tol * w.abs().max(1e-12), "{model} {field} {k}: wgpu {g}, cpu {w}");
            }
        }
    }

    /// `mmif train -m cddfuse --device wgpu`: its first step equals the CPU's (`first_steps_agree`),
    /// it checkpoints, and it resumes to the end.
    #[test]
    fn cddfuse_trains_checkpoints_and_resumes_on_wgpu() {
        let s = Scratch::new("device_train");
        tiny_patches(&s);
        let data = s.s("d.mmifds");
        let cfg = ["--data", &data, "--epochs", "2", "--epoch-gap", "1", "--batch", "2"];
        first_steps_agree(&s, "cddfuse", &cfg, "cpu", "gpu");
        assert!(s.path("gpu/latest.json").is_file(), "a checkpoint after --max-steps");
        // Resume on wgpu to the end of the run: 3 steps per epoch, 2 epochs.
        let o = mmif(["train", "-m", "cddfuse", "--data", &data, "-o", &s.s("gpu"), "--device", "wgpu", "--resume"]);
        ok(&o, "resume on wgpu");
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

    /// EMMA's three procedures on wgpu: a pseudo-sensor (`emma-ai`, with train-mode BatchNorm) and
    /// the U-Fuser against two frozen pseudo-sensors, first step against the CPU's.
    #[test]
    fn emma_first_steps_equal_the_cpu_on_wgpu() {
        let s = Scratch::new("device_emma");
        let (ai, av, d) = emma_data(&s);
        // Small batches: lavapipe runs every pass on the CPU, far slower than mmif's own kernels.
        first_steps_agree(&s, "emma-ai", &["--data", &ai, "--batch", "2", "--epochs", "1"], "ai_cpu", "ai_gpu");
        first_steps_agree(&s, "emma-av", &["--data", &av, "--batch", "2", "--epochs", "1"], "av_cpu", "av_gpu");
        let (sa, sv) = (s.s("ai_cpu/emma-ai.safetensors"), s.s("av_cpu/emma-av.safetensors"));
        let cfg = ["--data", &d, "--ai", &sa, "--av", &sv, "--batch", "1", "--epochs", "1"];
        first_steps_agree(&s, "emma", &cfg, "u_cpu", "u_gpu");
    }

    /// FILM (image and text features) on wgpu, first step against the CPU's.
    #[test]
    fn film_first_step_equals_the_cpu_on_wgpu() {
        let s = Scratch::new("device_film");
        let d = film_data(&s, 2, 16, 16);
        first_steps_agree(&s, "film", &["--data", &d, "--batch", "2", "--epochs", "1"], "cpu", "gpu");
    }
}
