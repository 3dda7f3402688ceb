//! `mmif`: multi-modality image fusion from one binary.

// The argument structs' doc comments are clap's `--help` text (`[0,1]`, `<stem>.npy`), not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod bench;
mod convert;
mod device;
mod embed;
mod eval;
mod figure;
mod figure_vector;
mod fuse;
mod models;
mod pairs;
mod plot;
mod prepare;
mod progress;
mod registry;
mod report;
mod scene;
mod sense;
mod shard;
mod text;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mmif",
    version,
    about = "Multi-modality image fusion: CDDFuse, EMMA, FILM and classic baselines, with the standard metrics"
)]
struct Cli {
    /// Worker threads (default: all cores); `mmif bench` also takes a list (`--threads 1,2`) and
    /// times each count in turn, round after round
    #[arg(long, global = true, value_name = "N", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Refuse any input image (PNG, JPEG, BMP, TIFF, .npy) that declares more than N pixels
    /// (width × height), before decoding it; 0 = no limit
    #[arg(long, global = true, value_name = "N", default_value_t = mmif_io::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing would only add noise
enum Command {
    /// Fuse a pair of images, or two folders of pairs
    Fuse(fuse::FuseArgs),
    /// Score fused images with the standard metrics (EN, SD, SF, MI, SCD, VIF, Qabf, SSIM, …)
    Eval(eval::EvalArgs),
    /// Convert a checkpoint between PyTorch .pth, Jittor .pkl and .safetensors (the official layout of
    /// its network for .pth/.pkl)
    Convert(convert::ConvertArgs),
    /// Text features for FILM from plain text: the BLIP-2 (BERT) text encoder on a caption, a caption
    /// file or a folder of them, written as (1, T, 768) float32 .npy
    TextEncode(text::TextEncodeArgs),
    /// List the tensors of a checkpoint with their shapes
    Inspect(convert::InspectArgs),
    /// List the available models
    Models,
    /// Time a model (median latency, peak memory) on synthetic inputs
    Bench(bench::BenchArgs),
    /// Run an EMMA pseudo-sensor (UNet5 Ai or Av) on an image
    Sense(sense::SenseArgs),
    /// Cut training patches from folders of image pairs into a dataset file
    Prepare(prepare::PrepareArgs),
    /// Train a network with its official procedure (resumable)
    Train(train::TrainArgs),
    /// One self-contained HTML page comparing methods: panels with synchronised zoom, tables, charts
    Report(report::ReportArgs),
    /// The comparison figure of papers: sources and methods in a grid with zoomed insets (PNG, SVG, PDF)
    Figure(figure::FigureArgs),
    /// Redraw the loss plots (loss.svg, loss.png) of a training run folder
    Plot(plot::PlotArgs),
}

fn main() -> ExitCode {
    mmif_nn::keep_freed_memory();
    let cli = Cli::parse();
    mmif_io::set_max_pixels(cli.max_pixels);
    let bench = matches!(cli.command, Command::Bench(_));
    if cli.threads.contains(&0) {
        eprintln!("mmif: error: --threads must be at least 1");
        return ExitCode::FAILURE;
    }
    match cli.threads.as_slice() {
        [] => {}
        // `mmif bench` times several counts in thread pools of its own.
        [_, _, ..] if bench => {}
        [n] => {
            if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(*n).build_global() {
                eprintln!("mmif: error: cannot set up {n} threads: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ => {
            eprintln!("mmif: error: --threads takes one count here (a list such as 1,2 is for `mmif bench`)");
            return ExitCode::FAILURE;
        }
    }
    let result = match &cli.command {
        Command::Fuse(args) => fuse::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Convert(args) => convert::run_convert(args),
        Command::Inspect(args) => convert::run_inspect(args),
        Command::TextEncode(args) => text::run_text_encode(args),
        Command::Models => models::print_models(),
        Command::Bench(args) => bench::run(args, &cli.threads),
        Command::Sense(args) => sense::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => train::run(args),
        Command::Report(args) => report::run(args),
        Command::Figure(args) => figure::run(args),
        Command::Plot(args) => plot::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mmif: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
