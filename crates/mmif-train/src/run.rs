//! A whole training run of any [`Trainer`] on an `.mmifds` dataset, resumable.
//!
//! Run folder (the official FILM experiment folder's meaning, in mmif's formats):
//! ```text
//! params.json                 model, resolved hyper-parameters, seed, dataset (path, shape,
//!                             SHA-1), provenance (mmif version and commit, command line)
//! log.txt                     one line per epoch: time, steps, mean loss terms, learning rate
//! loss.jsonl                  one JSON object per step (epoch, step, stage, lr, loss terms, grad norms)
//! <model>.safetensors         the latest weights (official key names; `mmif fuse --weights`)
//! model/ckpt_N.safetensors    the weights after epoch N (1-based, as the official ckpt_N)
//! pic_fusion/ckpt_N/batch-K.png  after epoch N: rows of  sources… | output  for the first
//!                             `sample_batches` batches of the dataset (in dataset order)
//! checkpoints/step-NNNNNNNNN/ model.safetensors, optim.safetensors (Adam moments), state.json
//! latest.json                 which checkpoint is the newest (replaced atomically last)
//! ```
//! Shuffling is a Fisher–Yates permutation per epoch from a SplitMix64 stream seeded with
//! `(seed, epoch)`, so the position `(epoch, batch)` is the whole RNG state a resume needs
//! (trainers that draw random numbers derive them from `(seed, global step)` too).
//! The last short batch of an epoch is kept or dropped as the procedure's `drop_last` says.
//! A run stops early at `max_steps` or when [`RunOptions::stop`] is raised (Ctrl-C in the CLI):
//! the step in progress finishes and a checkpoint is written, so `--resume` loses nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData as BurnData};
use mmif_io::TensorData;
use mmif_nn::weights;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, DatasetError};
use crate::optim::{AdamState, StepLr};
use crate::trainer::{Batch, StepReport, Trainer};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Io(#[from] mmif_io::Error),
    #[error("{0}")]
    Load(#[from] weights::LoadError),
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("{0}")]
    Data(String),
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> RunError {
    RunError::File { path: path.to_path_buf(), msg: msg.to_string() }
}

/// Settings of a run besides the procedure's hyper-parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOptions {
    pub seed: u64,
    pub out: PathBuf,
    /// Also checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every: u64,
    /// Batches shown in the per-epoch sample panels (`pic_fusion/ckpt_N/`).
    pub sample_batches: usize,
    /// Stop after this global step (for tests and time-boxed runs); a checkpoint is written.
    pub max_steps: Option<u64>,
    /// What made the run (mmif version, commit, command line), recorded in `params.json`.
    pub provenance: serde_json::Value,
    /// Set from elsewhere (a Ctrl-C handler) to stop after the current step with a checkpoint.
    #[serde(skip)]
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Progress reports of [`run`].
#[derive(Debug)]
pub enum Event<'a> {
    Start { total_steps: u64, start_step: u64, steps_per_epoch: u64 },
    Step { epoch: usize, batch: u64, global_step: u64, log: &'a StepReport },
    Checkpoint { dir: &'a Path },
    EpochEnd { epoch: usize },
}

/// Where a run stands (saved in each checkpoint's `state.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    pub model: String,
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// Batches of that epoch already done.
    pub batch: u64,
    pub global_step: u64,
    pub seed: u64,
    pub dataset_len: usize,
    /// The procedure's hyper-parameters.
    pub config: serde_json::Value,
    pub lr: BTreeMap<String, f64>,
    pub schedulers: BTreeMap<String, StepLr>,
    /// Adam step count per optimiser and parameter key.
    pub adam_steps: BTreeMap<String, BTreeMap<String, u64>>,
}

/// SplitMix64: the run's shuffling stream.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The sample order of epoch `epoch`.
pub fn permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = SplitMix(seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// The records `idx` of `data` as a batch on `device`.
pub fn load_batch(data: &mut Dataset, idx: &[usize], device: &Device) -> Result<Batch, RunError> {
    let (h, w, n) = (data.height, data.width, idx.len());
    let mut planes = vec![Vec::with_capacity(n * h * w); data.sources];
    for &i in idx {
        let rec = data.get(i)?;
        for (p, r) in planes.iter_mut().zip(rec) {
            p.extend_from_slice(&r);
        }
    }
    let planes = planes.into_iter().map(|p| Tensor::from_data(BurnData::new(p, [n, 1, h, w]), device)).collect();
    let text = match data.text_dim {
        None => None,
        Some(dim) => {
            let mut feats = Vec::new();
            let mut tokens = None;
            for &i in idx {
                let t = data.text(i)?.expect("a dataset with text has text for every record");
                if tokens.is_some_and(|n| n != t.tokens) {
                    return Err(RunError::Data(format!(
                        "{}: records of one batch have text features of {} and {} tokens; \
                         a batch needs one length (as PyTorch's collate does)",
                        data.path().display(),
                        tokens.unwrap_or(0),
                        t.tokens
                    )));
                }
                tokens = Some(t.tokens);
                feats.extend_from_slice(&t.data);
            }
            let t = tokens.unwrap_or(0);
            Some(Tensor::from_data(BurnData::new(feats, [n, t, dim]), device))
        }
    };
    Ok(Batch { planes, text })
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), RunError> {
    let bytes = serde_json::to_vec_pretty(v).expect("serialisable");
    Ok(mmif_io::write_atomic(path, &bytes)?)
}

/// Writes a checkpoint folder and points `latest.json` at it; keeps the two newest.
fn checkpoint<T: Trainer>(trainer: &T, state: &RunState, out: &Path) -> Result<PathBuf, RunError> {
    let rel = format!("checkpoints/step-{:09}", state.global_step);
    let dir = out.join(&rel);
    std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
    mmif_io::save_safetensors(&dir.join("model.safetensors"), &trainer.weights())?;
    let mut moments = BTreeMap::new();
    for (group, opt) in &trainer.optim().optimizers {
        for (key, st) in &opt.state {
            let n = st.exp_avg.len();
            moments.insert(format!("{group}/exp_avg/{key}"), TensorData::f32(vec![n], st.exp_avg.clone()));
            moments.insert(format!("{group}/exp_avg_sq/{key}"), TensorData::f32(vec![n], st.exp_avg_sq.clone()));
        }
    }
    mmif_io::save_safetensors(&dir.join("optim.safetensors"), &moments)?;
    write_json(&dir.join("state.json"), state)?;
    write_json(&out.join("latest.json"), &serde_json::json!({ "checkpoint": rel, "global_step": state.global_step }))?;
    // Prune older checkpoints, keeping this one and the one before.
    let ck = out.join("checkpoints");
    if let Ok(rd) = std::fs::read_dir(&ck) {
        let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        dirs.sort();
        let keep = dirs.len().saturating_sub(2);
        for d in &dirs[..keep] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    Ok(dir)
}

fn run_state<T: Trainer>(trainer: &T, epoch: usize, batch: u64, global_step: u64, seed: u64, n: usize) -> RunState {
    RunState {
        model: trainer.model().to_string(),
        epoch,
        batch,
        global_step,
        seed,
        dataset_len: n,
        config: trainer.config_json(),
        lr: trainer.optim().optimizers.iter().map(|(g, o)| (g.clone(), o.lr)).collect(),
        schedulers: trainer.optim().schedulers.clone(),
        adam_steps: trainer
            .optim()
            .optimizers
            .iter()
            .map(|(g, o)| (g.clone(), o.state.iter().map(|(k, s)| (k.clone(), s.step)).collect()))
            .collect(),
    }
}

/// The saved state of the newest checkpoint of the run folder `out`, and that checkpoint's folder.
pub fn latest_state(out: &Path) -> Result<(RunState, PathBuf), RunError> {
    let latest = out.join("latest.json");
    let text = std::fs::read_to_string(&latest)
        .map_err(|e| RunError::Resume(format!("{}: {e} (no checkpoint in this run folder)", latest.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| file_err(&latest, e))?;
    let rel = v["checkpoint"].as_str().ok_or_else(|| file_err(&latest, "no `checkpoint` entry"))?;
    let dir = out.join(rel);
    let state_path = dir.join("state.json");
    let state: RunState =
        serde_json::from_str(&std::fs::read_to_string(&state_path).map_err(|e| file_err(&state_path, e))?)
            .map_err(|e| file_err(&state_path, e))?;
    Ok((state, dir))
}

/// Loads the newest checkpoint of `out` into `trainer`.
fn resume<T: Trainer>(trainer: &mut T, out: &Path) -> Result<RunState, RunError> {
    let (state, dir) = latest_state(out)?;
    if state.model != trainer.model() {
        return Err(RunError::Resume(format!(
            "the run in {} trains {}, not {}",
            out.display(),
            state.model,
            trainer.model()
        )));
    }
    trainer.set_config_json(&state.config).map_err(|e| RunError::Resume(format!("saved configuration: {e}")))?;
    let model = mmif_io::load_checkpoint(&dir.join("model.safetensors"))?;
    trainer.load_weights(&weights::canonicalize(&model.tensors, None))?;
    let moments = mmif_io::load_checkpoint(&dir.join("optim.safetensors"))?.tensors;
    for (group, opt) in trainer.optim_mut().optimizers.iter_mut() {
        opt.lr = *state.lr.get(group).ok_or_else(|| RunError::Resume(format!("no learning rate for {group}")))?;
        opt.state.clear();
        for (key, &step) in state.adam_steps.get(group).into_iter().flatten() {
            let get = |what: &str| {
                moments
                    .get(&format!("{group}/{what}/{key}"))
                    .map(|t| t.data.clone())
                    .ok_or_else(|| RunError::Resume(format!("optimizer state {what} of {key} is missing")))
            };
            opt.state.insert(key.clone(), AdamState { step, exp_avg: get("exp_avg")?, exp_avg_sq: get("exp_avg_sq")? });
        }
    }
    trainer.optim_mut().schedulers = state.schedulers.clone();
    Ok(state)
}

/// Keeps the first `lines` lines of a log (those before the resumed checkpoint).
fn truncate_log(path: &Path, lines: u64) -> Result<(), RunError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text.lines().take(lines as usize).map(|l| format!("{l}\n")).collect();
    Ok(mmif_io::write_atomic(path, kept.as_bytes())?)
}

/// `rows` of images (each `h×w`, values in [0,1]) side by side, as one 8-bit gray PNG.
fn write_panel(path: &Path, rows: &[Vec<Vec<f32>>], h: usize, w: usize) -> Result<(), RunError> {
    let gap = 2;
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (pw, ph) = (cols * (w + gap) - gap, rows.len() * (h + gap) - gap);
    let mut data = vec![255.0f32; pw * ph];
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            for y in 0..h {
                for x in 0..w {
                    data[(r * (h + gap) + y) * pw + c * (w + gap) + x] = img[y * w + x].clamp(0.0, 1.0) * 255.0;
                }
            }
        }
    }
    Ok(mmif_io::write_png8(path, &mmif_io::Plane::new(pw, ph, data))?)
}

/// The SHA-1 of a file, as hex.
fn sha1_hex(path: &Path) -> Result<String, RunError> {
    use sha1::{Digest, Sha1};
    let mut f = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let mut h = Sha1::new();
    std::io::copy(&mut f, &mut h).map_err(|e| file_err(path, e))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Per-epoch sums of the logged loss terms.
#[derive(Default)]
struct EpochMeans {
    sums: BTreeMap<String, f64>,
    steps: u64,
}

impl EpochMeans {
    fn add(&mut self, log: &StepReport) {
        for (k, v) in &log.losses {
            *self.sums.entry(k.clone()).or_default() += v;
        }
        self.steps += 1;
    }

    /// Adds the steps of `epoch` already in the loss log.
    fn add_logged(&mut self, log: &Path, epoch: usize) -> Result<(), RunError> {
        let text = std::fs::read_to_string(log).map_err(|e| file_err(log, e))?;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| file_err(log, e))?;
            if v["epoch"].as_u64() == Some(epoch as u64) {
                let losses = v["losses"].as_object().into_iter().flatten();
                self.add(&StepReport {
                    losses: losses.filter_map(|(k, x)| Some((k.clone(), x.as_f64()?))).collect(),
                    ..StepReport::default()
                });
            }
        }
        Ok(())
    }

    fn line(&self, epoch: usize, lr: f64, stage: &str) -> String {
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut s = format!("time {time} epoch {} steps {}", epoch + 1, self.steps);
        if !stage.is_empty() {
            s += &format!(" stage {stage}");
        }
        for (k, v) in &self.sums {
            s += &format!(" {k} {:.6}", v / self.steps.max(1) as f64);
        }
        s + &format!(" lr {lr:e}\n")
    }
}

/// Trains `trainer` on `data`. A new run starts from the trainer's current weights; with
/// `resume_run` the newest checkpoint of `opts.out` is loaded into it and continued.
pub fn run<T: Trainer>(
    trainer: &mut T,
    data: &mut Dataset,
    opts: &RunOptions,
    resume_run: bool,
    device: &Device,
    mut on: impl FnMut(Event<'_>),
) -> Result<RunState, RunError> {
    let inputs = trainer.inputs();
    if data.sources != inputs.sources || data.len == 0 {
        return Err(RunError::Data(format!(
            "{}: {} records of {} planes; {} trains on records of {} planes ({})",
            data.path().display(),
            data.len,
            data.sources,
            trainer.model(),
            inputs.sources,
            inputs.names
        )));
    }
    if inputs.text && data.text_dim.is_none() {
        return Err(RunError::Data(format!(
            "{}: {} trains on image pairs with text features, this dataset has none (`mmif prepare --text-dir`)",
            data.path().display(),
            trainer.model()
        )));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out.join("model")).map_err(|e| file_err(out, e))?;
    let start = if resume_run {
        let s = resume(trainer, out)?;
        if s.dataset_len != data.len {
            return Err(RunError::Resume(format!(
                "the run was made on {} records, this dataset has {}",
                s.dataset_len, data.len
            )));
        }
        truncate_log(&out.join("loss.jsonl"), s.global_step)?;
        truncate_log(&out.join("log.txt"), s.epoch as u64)?;
        s
    } else {
        for f in ["loss.jsonl", "log.txt"] {
            let _ = std::fs::remove_file(out.join(f));
        }
        write_json(
            &out.join("params.json"),
            &serde_json::json!({
                "model": trainer.model(),
                "config": trainer.config_json(),
                "seed": opts.seed,
                "checkpoint_every": opts.checkpoint_every,
                "dataset": {
                    "path": data.path().display().to_string(),
                    "records": data.len, "planes": data.sources, "height": data.height, "width": data.width,
                    "sha1": sha1_hex(data.path())?,
                    "metadata": data.metadata,
                },
                "provenance": opts.provenance,
            }),
        )?;
        run_state(trainer, 0, 0, 0, opts.seed, data.len)
    };
    let seed = start.seed;
    let sched = trainer.schedule();
    let batch = sched.batch.max(1);
    let per_epoch = if sched.drop_last { data.len / batch } else { data.len.div_ceil(batch) } as u64;
    if per_epoch == 0 {
        return Err(RunError::Data(format!(
            "{} records make no full batch of {batch} (the procedure drops the last short batch)",
            data.len
        )));
    }
    on(Event::Start {
        total_steps: per_epoch * sched.epochs as u64,
        start_step: start.global_step,
        steps_per_epoch: per_epoch,
    });
    let log_path = out.join("loss.jsonl");
    let open = |p: &Path| std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| file_err(p, e));
    let mut log = open(&log_path)?;
    let mut epoch_log = open(&out.join("log.txt"))?;
    let weights_path = out.join(format!("{}.safetensors", trainer.model()));
    let mut global = start.global_step;
    let mut state = start.clone();
    for epoch in start.epoch..sched.epochs {
        let order = permutation(data.len, seed, epoch);
        let first = if epoch == start.epoch { start.batch } else { 0 };
        let mut means = EpochMeans::default();
        if first > 0 {
            // A resumed epoch: its mean includes the steps logged before the interruption.
            means.add_logged(&log_path, epoch)?;
        }
        let mut stage = String::new();
        for b in first..per_epoch {
            let lo = b as usize * batch;
            let idx = &order[lo..(lo + batch).min(data.len)];
            let input = load_batch(data, idx, device)?;
            let lr = trainer.lr();
            let t0 = std::time::Instant::now();
            let report = trainer.step(epoch, global, &input);
            global += 1;
            means.add(&report);
            stage.clone_from(&report.stage);
            let line = serde_json::json!({
                "global_step": global, "epoch": epoch, "batch": b, "stage": report.stage,
                "lr": lr, "losses": report.losses, "grad_norm": report.group_norms(),
                "step_seconds": t0.elapsed().as_secs_f64(),
            });
            writeln!(log, "{line}").map_err(|e| file_err(&log_path, e))?;
            on(Event::Step { epoch, batch: b, global_step: global, log: &report });
            let end_of_epoch = b + 1 == per_epoch;
            if end_of_epoch {
                trainer.end_epoch(epoch);
                state = run_state(trainer, epoch + 1, 0, global, seed, data.len);
            } else {
                state = run_state(trainer, epoch, b + 1, global, seed, data.len);
            }
            let interrupted = opts.stop.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
            let stop = interrupted || opts.max_steps.is_some_and(|m| global >= m);
            if end_of_epoch {
                // Epoch outputs first, so a checkpoint never points past what they show.
                let w = trainer.weights();
                mmif_io::save_safetensors(&out.join(format!("model/ckpt_{}.safetensors", epoch + 1)), &w)?;
                mmif_io::save_safetensors(&weights_path, &w)?;
                write_panels(
                    trainer,
                    data,
                    opts.sample_batches,
                    batch,
                    &out.join(format!("pic_fusion/ckpt_{}", epoch + 1)),
                    device,
                )?;
                epoch_log
                    .write_all(means.line(epoch, trainer.lr(), &stage).as_bytes())
                    .map_err(|e| file_err(out, e))?;
            }
            if end_of_epoch || stop || (opts.checkpoint_every > 0 && global % opts.checkpoint_every == 0) {
                log.flush().map_err(|e| file_err(&log_path, e))?;
                epoch_log.flush().map_err(|e| file_err(out, e))?;
                let dir = checkpoint(trainer, &state, out)?;
                on(Event::Checkpoint { dir: &dir });
            }
            if end_of_epoch {
                on(Event::EpochEnd { epoch });
            }
            if stop {
                mmif_io::save_safetensors(&weights_path, &trainer.weights())?;
                return Ok(state);
            }
        }
    }
    Ok(state)
}

/// The sample panels of the first `batches` batches of `data` (in dataset order).
fn write_panels<T: Trainer>(
    trainer: &T,
    data: &mut Dataset,
    batches: usize,
    batch: usize,
    dir: &Path,
    device: &Device,
) -> Result<(), RunError> {
    if batches == 0 {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let plane = data.height * data.width;
    for k in 0..batches {
        let lo = k * batch;
        if lo >= data.len {
            break;
        }
        let idx: Vec<usize> = (lo..(lo + batch).min(data.len)).collect();
        let input = load_batch(data, &idx, device)?;
        let cols: Vec<Vec<f32>> = trainer.panel(&input).into_iter().map(weights::tensor_to_vec).collect();
        let rows: Vec<Vec<Vec<f32>>> =
            (0..idx.len()).map(|r| cols.iter().map(|c| c[r * plane..(r + 1) * plane].to_vec()).collect()).collect();
        write_panel(&dir.join(format!("batch-{k}.png")), &rows, data.height, data.width)?;
    }
    Ok(())
}
