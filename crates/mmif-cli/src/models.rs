//! `mmif models`, and the fusers of `mmif_fuse::models` (shared with the Python package).

pub use mmif_fuse::models::*;

use crate::registry::NETWORKS;

/// `mmif models`: the networks of the registry, then every weight-free method of `mmif_classic`.
pub fn print_models() -> anyhow::Result<std::process::ExitCode> {
    println!("{:<10} {:<9} {:<8} about", "model", "tasks", "weights");
    for m in NETWORKS {
        println!("{:<10} {:<9} {:<8} {}", m.network.name(), m.tasks, "needed", m.about);
        println!("{:<29} inputs: {}", "", m.inputs);
        println!("{:<29} weights: {}", "", m.weights);
        if let Some(side) = m.min_side {
            println!("{:<29} images of at least {side}×{side} pixels", "");
        }
    }
    for m in mmif_classic::all() {
        println!("{:<10} {:<9} {:<8} {}", m.name, "any", "none", m.description);
        println!("{:<29} {}", "", m.citation);
        println!("{:<29} speed at 640x480: {}", "", m.speed);
        for p in &m.params {
            println!("{:<29} --param {}={}  ({})", "", p.key, p.value, p.help);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
