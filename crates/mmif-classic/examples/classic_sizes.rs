//! Runs every weight-free method (default parameters) on pseudo-random gray pairs of the given
//! sizes and prints the time of each run: a check that large images work (no panic, finite
//! output) and a rough speed figure.
//!
//! ```text
//! cargo run --release -p mmif-classic --example classic_sizes -- 4000x3000 640x480 [--only adf,cbf]
//! ```

use std::time::Instant;

use mmif_classic::{Method, Plane};

fn noise(w: usize, h: usize, seed: u64) -> Plane {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Smooth structure plus 8-bit noise, so multi-scale methods have something to work on.
    let data = (0..w * h)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let smooth = 128.0 + 60.0 * (x * 0.013 + seed as f32).sin() * (y * 0.011).cos();
            (smooth + (s % 41) as f32 - 20.0).round().clamp(0.0, 255.0)
        })
        .collect();
    Plane::new(w, h, data)
}

fn main() -> Result<(), String> {
    let mut sizes = Vec::new();
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--only" {
            only = Some(args.next().ok_or("--only a,b,c")?.split(',').map(str::to_string).collect());
            continue;
        }
        let (w, h) = a.split_once('x').ok_or(format!("size `{a}` is not WxH"))?;
        sizes.push((w.parse::<usize>().map_err(|e| e.to_string())?, h.parse::<usize>().map_err(|e| e.to_string())?));
    }
    for (w, h) in sizes {
        let (a, b) = (noise(w, h, 1), noise(w, h, 2));
        for m in Method::defaults() {
            if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == m.name())) {
                continue;
            }
            let t = Instant::now();
            let f = m.fuse(&a, &b).map_err(|e| format!("{m} on {w}x{h}: {e}"))?;
            let s = t.elapsed().as_secs_f64();
            let finite = f.data.iter().all(|v| v.is_finite());
            println!("{w}x{h} {:>8}: {s:8.3} s, finite {finite}", m.name());
            if !finite || (f.width, f.height) != (w, h) {
                return Err(format!("{m} on {w}x{h}: bad output"));
            }
        }
    }
    Ok(())
}
