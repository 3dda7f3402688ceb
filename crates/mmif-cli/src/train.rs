//! `mmif train`: the official training procedure of a network on an `.mmifds` dataset.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use mmif_nn::cddfuse::CddFuse;
use mmif_nn::emma::{UNet5, Ufuser};
use mmif_nn::film::Film;
use mmif_nn::weights;
use mmif_train::cddfuse::{CddFuseConfig, CddFuseTrainer};
use mmif_train::dataset::Dataset;
use mmif_train::emma::{EmmaConfig, EmmaTrainer, PseudoSensorConfig, PseudoSensorTrainer, Sensor};
use mmif_train::film::{FilmConfig, FilmTrainer};
use mmif_train::run::{Event, RunOptions, run as run_training};
use mmif_train::trainer::Trainer;

use crate::progress;
use crate::registry::Network;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Procedure: cddfuse, emma (U-Fuser; needs --ai/--av), emma-ai / emma-av (pseudo-sensors), film
    #[arg(long, short = 'm', value_enum, default_value_t = Network::Cddfuse)]
    pub model: Network,
    /// emma: the trained infrared pseudo-sensor A_i (frozen; copied into the run folder)
    #[arg(long, value_name = "FILE")]
    pub ai: Option<PathBuf>,
    /// emma: the trained visible pseudo-sensor A_v (frozen; copied into the run folder)
    #[arg(long, value_name = "FILE")]
    pub av: Option<PathBuf>,
    /// Dataset written by `mmif prepare`
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Run folder (weights, checkpoints, loss.jsonl, samples, params.json)
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Epochs in all (official: cddfuse 120, emma 120, emma-ai/av 40, film 150)
    #[arg(long)]
    pub epochs: Option<usize>,
    /// cddfuse: epochs of phase I (official: 40)
    #[arg(long)]
    pub epoch_gap: Option<usize>,
    /// Batch size (official: cddfuse 8, emma 4, emma-ai/av 64, film 2)
    #[arg(long)]
    pub batch: Option<usize>,
    /// Initial learning rate (official: 1e-4; film 1e-5)
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of the initialisation and of the shuffling
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from these weights instead of a fresh initialisation
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Continue the run in --out from its newest checkpoint
    #[arg(long)]
    pub resume: bool,
    /// Also checkpoint every N steps (0: at the end of each epoch only)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub checkpoint_every: u64,
    /// Stop after this many steps in all (a checkpoint is written; --resume continues)
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Batches shown in each epoch's sample panels (pic_fusion/ckpt_N/batch-K.png)
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub sample_batches: usize,
    /// Start a new run in a folder that already holds one
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub device: crate::device::TrainDeviceArgs,
}

pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    if args.resume && (args.init.is_some() || args.epochs.is_some() || args.lr.is_some() || args.batch.is_some()) {
        bail!("--resume continues the run as it was configured; drop --init/--epochs/--lr/--batch");
    }
    if !args.resume && args.out.join("latest.json").exists() && !args.force {
        bail!("{} already holds a run: use --resume to continue it or --force to start over", args.out.display());
    }
    if args.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    let device = args.device.device()?.autodiff();
    // Fresh weights are drawn on the CPU, then moved to the device by the trainer: the same
    // --seed gives the same initial network on every device (each backend has its own RNG).
    let init_device = mmif_nn::cpu().autodiff();
    init_device.seed(args.seed);
    match args.model {
        Network::Cddfuse => {
            let mut config = CddFuseConfig::default();
            if let Some(v) = args.epochs {
                config.epochs = v;
            }
            if let Some(v) = args.epoch_gap {
                config.epoch_gap = v;
            }
            if let Some(v) = args.batch {
                config.batch = v;
            }
            if let Some(v) = args.lr {
                config.lr = v;
            }
            // burn's default initialisation, made reproducible by the run's seed.
            let trainer = CddFuseTrainer::new(CddFuse::new(&init_device), config, &device);
            train(args, trainer, &CddFuse::new(&mmif_nn::cpu()), &device)
        }
        Network::EmmaAi | Network::EmmaAv => {
            let sensor = if args.model == Network::EmmaAi { Sensor::Ai } else { Sensor::Av };
            let mut config = PseudoSensorConfig { sensor, ..Default::default() };
            override_common(args, &mut config.epochs, &mut config.batch, &mut config.lr);
            let trainer = PseudoSensorTrainer::new(UNet5::new(&init_device), config, &device);
            train(args, trainer, &UNet5::new(&mmif_nn::cpu()), &device)
        }
        Network::Emma => {
            let mut config = EmmaConfig { seed: args.seed, ..Default::default() };
            override_common(args, &mut config.epochs, &mut config.batch, &mut config.lr);
            let (ai, av) = pseudo_sensors(args)?;
            let plain = mmif_nn::cpu();
            let trainer = EmmaTrainer::new(
                Ufuser::new(&init_device),
                weights::load(UNet5::new(&plain), &ai, &plain)?,
                weights::load(UNet5::new(&plain), &av, &plain)?,
                config,
                &device,
            );
            train(args, trainer, &Ufuser::new(&plain), &device)
        }
        Network::Film => {
            let mut config = FilmConfig::default();
            override_common(args, &mut config.epochs, &mut config.batch, &mut config.lr);
            let trainer = FilmTrainer::new(Film::new(&init_device), config, &device);
            train(args, trainer, &Film::new(&mmif_nn::cpu()), &device)
        }
    }
}

fn override_common(args: &TrainArgs, epochs: &mut usize, batch: &mut usize, lr: &mut f64) {
    if let Some(v) = args.epochs {
        *epochs = v;
    }
    if let Some(v) = args.batch {
        *batch = v;
    }
    if let Some(v) = args.lr {
        *lr = v;
    }
}

/// EMMA's frozen pseudo-sensors: `--ai`/`--av` for a new run (copied into the run folder, so the
/// run is self-contained), the run folder's copies when resuming.
fn pseudo_sensors(args: &TrainArgs) -> Result<(weights::StateDict, weights::StateDict)> {
    let dir = args.out.join("pseudo_sensors");
    let load = |given: &Option<PathBuf>, name: &str| -> Result<weights::StateDict> {
        let copy = dir.join(format!("{name}.safetensors"));
        let path = match (given, args.resume) {
            (Some(p), false) => p.clone(),
            (None, true) => copy.clone(),
            (Some(_), true) => bail!("--resume uses the pseudo-sensors saved in the run folder; drop --{name}"),
            (None, false) => bail!(
                "emma trains the U-Fuser against frozen pseudo-sensors: give --ai and --av (trained with `mmif train -m emma-ai|emma-av`)"
            ),
        };
        let ckpt = mmif_io::load_checkpoint(&path).with_context(|| format!("--{name} {}", path.display()))?;
        let sd = weights::select_state_dict(&UNet5::new(&mmif_nn::cpu()), &ckpt.tensors, None);
        if !args.resume {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            mmif_io::save_safetensors(&copy, &sd)?;
        }
        Ok(sd)
    };
    Ok((load(&args.ai, "ai")?, load(&args.av, "av")?))
}

/// Loads the weights of `--init` (any checkpoint format: the official `.pth` with its groups
/// and `module.` prefixes, a Jittor `.pkl`, safetensors) into the trainer, selected for `net`.
fn init<T: Trainer, M: burn::module::Module>(trainer: &mut T, net: &M, path: &std::path::Path) -> Result<()> {
    let ckpt = mmif_io::load_checkpoint(path).with_context(|| format!("--init {}", path.display()))?;
    let sd = weights::select_state_dict(net, &ckpt.tensors, None);
    trainer.load_weights(&sd).with_context(|| format!("--init {}", path.display()))?;
    Ok(())
}

fn train<T: Trainer, M: burn::module::Module>(
    args: &TrainArgs,
    mut trainer: T,
    net: &M,
    device: &mmif_nn::Device,
) -> Result<ExitCode> {
    if let Some(p) = &args.init {
        init(&mut trainer, net, p)?;
    }
    let mut data = Dataset::open(&args.data)?;
    // Ctrl-C: finish the step, write a checkpoint, exit 130; a second Ctrl-C exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let opts = RunOptions {
        seed: args.seed,
        out: args.out.clone(),
        checkpoint_every: args.checkpoint_every,
        sample_batches: args.sample_batches,
        max_steps: args.max_steps,
        provenance: serde_json::json!({
            "mmif_version": env!("CARGO_PKG_VERSION"),
            "commit": env!("MMIF_GIT_COMMIT"),
            "command_line": std::env::args().collect::<Vec<_>>(),
            "init": args.init.as_ref().map(|p| p.display().to_string()),
            "device": mmif_nn::device::describe(device),
        }),
        stop: Some(stop.clone()),
    };
    let bar = progress::bar(0, "train");
    let state = run_training(&mut trainer, &mut data, &opts, args.resume, device, |ev| match ev {
        Event::Start { total_steps, start_step, .. } => {
            bar.set_length(total_steps);
            bar.set_position(start_step);
            bar.reset_eta();
        }
        Event::Step { epoch, global_step, log, .. } => {
            bar.set_position(global_step);
            let stage = if log.stage.is_empty() { String::new() } else { format!(" phase {}", log.stage) };
            bar.set_message(format!("epoch {}{stage} loss {:.5}", epoch + 1, log.loss()));
        }
        Event::EpochEnd { .. } => {
            // loss.svg / loss.png follow the run; a plot that cannot be drawn never stops training
            if let Err(e) = crate::plot::write_loss_plots(&args.out) {
                bar.suspend(|| eprintln!("warning: loss plot not updated: {e:#}"));
            }
        }
        Event::Checkpoint { .. } => {}
    })
    .with_context(|| format!("training in {}", args.out.display()))?;
    bar.finish_and_clear();
    if stop.load(Ordering::SeqCst) {
        eprintln!(
            "{}: stopped after step {} with a checkpoint; continue with `mmif train --resume --data {} -o {}`",
            args.out.display(),
            state.global_step,
            args.data.display(),
            args.out.display()
        );
        return Ok(ExitCode::from(130));
    }
    eprintln!(
        "{}: {} steps done ({} epochs complete), weights in {}",
        args.out.display(),
        state.global_step,
        state.epoch,
        args.out.join(format!("{}.safetensors", state.model)).display()
    );
    Ok(ExitCode::SUCCESS)
}
