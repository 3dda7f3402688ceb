//! Fuses one infrared–visible pair with a method as VIFB's `run_*.m` do (a colour visible image
//! channel by channel against the gray infrared one; jointly for IFEVIP and GTF), prints the time of each run and, given the
//! 8-bit image VIFB's MATLAB code produced for the same pair, the mean and max absolute
//! difference on the 0–255 scale after MATLAB's `uint8` conversion.
//!
//! ```text
//! cargo run --release -p mmif-classic --example vifb_parity -- METHOD IR.png VIS.png [REF.png] [--runs N] [--out F.png]
//!     [--projection L.txt]   (latlrr: another projection matrix, as text)
//!     [--dictionary D.f64]   (lp_sr, rp_sr: another 8x8 dictionary, little-endian float64, atom after atom)
//! ```

use std::path::Path;
use std::time::Instant;

use mmif_classic::{Method, Plane, Pyramid};

fn channels(path: &Path) -> Result<Vec<Plane>, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let rgb = img.to_rgb8();
    let planes: Vec<Plane> =
        (0..3).map(|k| Plane::new(w, h, rgb.pixels().map(|p| f32::from(p.0[k])).collect())).collect();
    let gray = planes[0].data == planes[1].data && planes[1].data == planes[2].data;
    Ok(if gray { vec![planes[0].clone()] } else { planes })
}

fn to_u8(v: f32) -> u8 {
    if v.is_nan() { 0 } else { v.round().clamp(0.0, 255.0) as u8 }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let (mut runs, mut out, mut projection, mut dictionary) = (1usize, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).ok_or("--runs N")?,
            "--out" => out = Some(it.next().ok_or("--out FILE")?.clone()),
            "--projection" => projection = Some(it.next().ok_or("--projection FILE")?.clone()),
            "--dictionary" => dictionary = Some(it.next().ok_or("--dictionary FILE")?.clone()),
            _ => pos.push(a.clone()),
        }
    }
    if pos.len() < 3 {
        return Err("usage: vifb_parity METHOD IR VIS [REF] [--runs N] [--out F.png]".into());
    }
    let method: Method = pos[0].parse().map_err(|e| format!("{e}"))?;
    let ir = channels(Path::new(&pos[1]))?;
    let vi = channels(Path::new(&pos[2]))?;
    if ir.len() != 1 {
        return Err("the infrared image must be gray".into());
    }
    let dict = match &dictionary {
        Some(file) => {
            let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let v = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
            Some(mmif_classic::Dictionary::new(8, v).map_err(|e| format!("{file}: {e}"))?)
        }
        None => None,
    };
    let mut fused = Vec::new();
    let mut best = f64::INFINITY;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        fused = if let (Method::LatLrr(p), Some(file)) = (method, &projection) {
            // Another LatLRR projection (e.g. VIFB's L_8 written as text by Octave).
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            let proj = mmif_classic::Projection::from_text(&text).map_err(|e| format!("{e}"))?;
            vi.iter().map(|v| mmif_classic::latlrr_with_projection(&ir[0], v, &proj, &p)).collect::<Result<Vec<_>, _>>()
        } else if let (Method::LpSr(p) | Method::RpSr(p), Some(d)) = (method, &dict) {
            let kind = if method.name() == "lp_sr" { Pyramid::Laplacian } else { Pyramid::Ratio };
            vi.iter()
                .map(|v| mmif_classic::mst_sr_with_dictionary(&ir[0], v, kind, &p, d))
                .collect::<Result<Vec<_>, _>>()
        } else {
            // Jointly for IFEVIP and GTF, channel by channel otherwise, as VIFB does.
            method.fuse_channels(&ir[0], &vi)
        }
        .map_err(|e| format!("{e}"))?;
        let s = t.elapsed().as_secs_f64();
        best = best.min(s);
        println!("{method} {}x{}x{}: {s:.3} s", ir[0].width, ir[0].height, vi.len());
    }
    println!("{method}: best of {runs}: {best:.3} s");
    if let Some(r) = pos.get(3) {
        let reference = channels(Path::new(r))?;
        let reference =
            if reference.len() == 1 && fused.len() == 3 { vec![reference[0].clone(); 3] } else { reference };
        if reference.len() != fused.len() || reference[0].data.len() != fused[0].data.len() {
            return Err(format!("{r}: size or channels differ from the result"));
        }
        let (mut sum, mut max, mut n) = (0.0f64, 0u8, 0usize);
        for (f, q) in fused.iter().zip(&reference) {
            for (&x, &y) in f.data.iter().zip(&q.data) {
                let d = to_u8(x).abs_diff(y as u8);
                sum += f64::from(d);
                max = max.max(d);
                n += 1;
            }
        }
        println!("{method} vs {r}: mean |diff| {:.4}, max {max}", sum / n as f64);
    }
    if let Some(o) = out {
        let (w, h) = (fused[0].width as u32, fused[0].height as u32);
        let res = if fused.len() == 1 {
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([to_u8(fused[0].data[(y * w + x) as usize])])).save(&o)
        } else {
            image::RgbImage::from_fn(w, h, |x, y| {
                let i = (y * w + x) as usize;
                image::Rgb([to_u8(fused[0].data[i]), to_u8(fused[1].data[i]), to_u8(fused[2].data[i])])
            })
            .save(&o)
        };
        res.map_err(|e| format!("{o}: {e}"))?;
    }
    Ok(())
}
