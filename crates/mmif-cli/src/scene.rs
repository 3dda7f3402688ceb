//! A figure as a list of drawing elements on a canvas measured in pixels, and its rendering to
//! an RGB raster. The vector writers (SVG, PDF) are in `figure_vector.rs`.
//!
//! Coordinates: origin at the top-left, x to the right, y down, integer pixels for images and
//! rectangles so the raster is exact (an inset drawn at an integer zoom equals the crop enlarged
//! by nearest neighbour, pixel for pixel).

use std::sync::{Arc, OnceLock};

use ab_glyph::{Font, FontRef, ScaleFont};
use image::{Rgb, RgbImage};

/// One thing drawn, in painting order.
#[derive(Clone, Debug)]
pub enum Element {
    /// `img` drawn into the `w`×`h` box at (`x`, `y`), scaled by nearest neighbour.
    Image { x: u32, y: u32, w: u32, h: u32, img: Arc<RgbImage> },
    /// The outline of the box (`x`, `y`, `w`, `h`) drawn `stroke` pixels wide *outside* the box,
    /// so the box's own pixels stay visible; clipped to `clip` (x, y, w, h).
    Frame { x: i64, y: i64, w: u32, h: u32, stroke: u32, color: [u8; 3], clip: [u32; 4] },
    /// One line of text, horizontally centred on `cx`, its em box starting at `top`, `size`
    /// pixels high.
    Text { cx: f64, top: f64, size: f64, text: String },
}

/// A white canvas of `width`×`height` pixels and what is drawn on it.
#[derive(Clone, Debug)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub elements: Vec<Element>,
}

/// The font of raster text (Ubuntu Light, shipped as bytes by `epaint_default_fonts`).
pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).expect("the bundled font parses"))
}

/// Width in pixels of `text` at `size` pixels (advances and kerning of the raster font).
pub fn text_width(text: &str, size: f64) -> f64 {
    let f = font().as_scaled(size as f32);
    let mut w = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            w += f.kern(p, id);
        }
        w += f.h_advance(id);
        prev = Some(id);
    }
    w as f64
}

impl Scene {
    /// Renders the scene to RGB.
    pub fn raster(&self) -> RgbImage {
        let mut out = RgbImage::from_pixel(self.width, self.height, Rgb([255, 255, 255]));
        for e in &self.elements {
            match e {
                Element::Image { x, y, w, h, img } => draw_image(&mut out, *x, *y, *w, *h, img),
                Element::Frame { x, y, w, h, stroke, color, clip } => {
                    draw_frame(&mut out, *x, *y, *w, *h, *stroke, *color, *clip)
                }
                Element::Text { cx, top, size, text } => draw_text(&mut out, *cx, *top, *size, text),
            }
        }
        out
    }
}

/// Nearest-neighbour scaling: destination pixel `i` of `n` takes source pixel `floor(i·m/n)` of `m`
/// (for an integer zoom `n = k·m` this is pixel `i / k`, each source pixel repeated `k` times).
fn draw_image(out: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, img: &RgbImage) {
    let (sw, sh) = img.dimensions();
    for j in 0..h {
        let ty = y + j;
        if ty >= out.height() {
            break;
        }
        let sy = (j as u64 * sh as u64 / h as u64) as u32;
        for i in 0..w {
            let tx = x + i;
            if tx >= out.width() {
                break;
            }
            let sx = (i as u64 * sw as u64 / w as u64) as u32;
            out.put_pixel(tx, ty, *img.get_pixel(sx, sy));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_frame(out: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, stroke: u32, color: [u8; 3], clip: [u32; 4]) {
    let s = stroke as i64;
    let (x0, y0, x1, y1) = (x - s, y - s, x + w as i64 + s, y + h as i64 + s);
    let cx0 = clip[0] as i64;
    let cy0 = clip[1] as i64;
    let cx1 = (clip[0] + clip[2]).min(out.width()) as i64;
    let cy1 = (clip[1] + clip[3]).min(out.height()) as i64;
    for py in y0.max(cy0)..y1.min(cy1) {
        for px in x0.max(cx0)..x1.min(cx1) {
            let inside = px >= x && px < x + w as i64 && py >= y && py < y + h as i64;
            if !inside {
                out.put_pixel(px as u32, py as u32, Rgb(color));
            }
        }
    }
}

fn draw_text(out: &mut RgbImage, cx: f64, top: f64, size: f64, text: &str) {
    let f = font().as_scaled(size as f32);
    let mut pen = (cx - text_width(text, size) / 2.0) as f32;
    let baseline = top as f32 + f.ascent();
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            pen += f.kern(p, id);
        }
        let glyph = id.with_scale_and_position(size as f32, ab_glyph::point(pen, baseline));
        pen += f.h_advance(id);
        prev = Some(id);
        let Some(outline) = font().outline_glyph(glyph) else { continue };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cov| {
            let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
            if px < 0 || py < 0 || px >= out.width() as i64 || py >= out.height() as i64 {
                return;
            }
            let p = out.get_pixel_mut(px as u32, py as u32);
            let a = cov.clamp(0.0, 1.0);
            for ch in &mut p.0 {
                *ch = (*ch as f32 * (1.0 - a)).round() as u8; // black text
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_frames_and_text() {
        let img = Arc::new(RgbImage::from_fn(3, 2, |x, y| Rgb([x as u8 * 50, y as u8 * 100, 7])));
        let scene = Scene {
            width: 40,
            height: 30,
            elements: vec![
                Element::Image { x: 1, y: 2, w: 6, h: 4, img: img.clone() },
                Element::Frame { x: 20, y: 10, w: 4, h: 3, stroke: 2, color: [255, 0, 0], clip: [0, 0, 40, 30] },
                Element::Text { cx: 20.0, top: 18.0, size: 10.0, text: "Ab".into() },
            ],
        };
        let r = scene.raster();
        for j in 0..4 {
            for i in 0..6 {
                assert_eq!(r.get_pixel(1 + i, 2 + j), img.get_pixel(i / 2, j / 2), "({i}, {j})");
            }
        }
        assert_eq!(r.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(r.get_pixel(18, 8), &Rgb([255, 0, 0]), "frame corner outside the box");
        assert_eq!(r.get_pixel(25, 14), &Rgb([255, 0, 0]));
        assert_eq!(r.get_pixel(20, 10), &Rgb([255, 255, 255]), "the box itself untouched");
        assert_eq!(r.get_pixel(26, 15), &Rgb([255, 255, 255]), "stroke ends after 2 pixels");
        let dark = (18..30).flat_map(|y| (0..40).map(move |x| (x, y))).filter(|&(x, y)| r.get_pixel(x, y)[0] < 128);
        assert!(dark.count() > 5, "the text is drawn");
        assert!(text_width("Ab", 10.0) > 8.0 && text_width("Ab", 20.0) > 2.0 * text_width("Ab", 10.0) - 1e-9);
    }
}
