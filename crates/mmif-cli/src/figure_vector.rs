//! SVG and PDF versions of a [`Scene`]: every image embedded at its own resolution (PNG in SVG,
//! Flate-compressed samples in PDF) and placed in its box, insets scaled without smoothing
//! (`image-rendering: pixelated`, PDF `/Interpolate false`), frames as stroked rectangles clipped
//! to their panel, labels as text (sans-serif in SVG, the base-14 Helvetica in PDF, so no font is
//! embedded; PDF labels are centred with the raster font's advances, within a few percent of
//! Helvetica's).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ab_glyph::{Font, ScaleFont};
use anyhow::Result;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

use crate::embed;
use crate::scene::{Element, Scene, font, text_width};

/// Baseline of a text line whose em box starts at `top`.
fn baseline(top: f64, size: f64) -> f64 {
    top + font().as_scaled(size as f32).ascent() as f64
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The scene as SVG, `ppi` canvas pixels per inch giving its physical size.
pub fn svg(scene: &Scene, ppi: f64) -> Result<String> {
    let (w, h) = (scene.width, scene.height);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{:.4}in\" height=\"{:.4}in\" \
         viewBox=\"0 0 {w} {h}\">",
        w as f64 / ppi,
        h as f64 / ppi
    );
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>");
    let mut clips: BTreeMap<[u32; 4], usize> = BTreeMap::new();
    for e in &scene.elements {
        match e {
            Element::Image { x, y, w, h, img } => {
                let scaled = (*w, *h) != img.dimensions();
                let style =
                    if scaled { " style=\"image-rendering:pixelated\" image-rendering=\"optimizeSpeed\"" } else { "" };
                let _ = writeln!(
                    s,
                    "<image x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\"{style} href=\"{}\"/>",
                    embed::data_url("image/png", &embed::png_bytes(img)?)
                );
            }
            Element::Frame { x, y, w, h, stroke, color, clip } => {
                let n = clips.len();
                let id = *clips.entry(*clip).or_insert_with(|| {
                    let _ = writeln!(
                        s,
                        "<clipPath id=\"c{n}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
                        clip[0], clip[1], clip[2], clip[3]
                    );
                    n
                });
                let half = *stroke as f64 / 2.0;
                let _ = writeln!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"rgb({},{},{})\" \
                     stroke-width=\"{stroke}\" clip-path=\"url(#c{id})\"/>",
                    *x as f64 - half,
                    *y as f64 - half,
                    *w as f64 + 2.0 * half,
                    *h as f64 + 2.0 * half,
                    color[0],
                    color[1],
                    color[2]
                );
            }
            Element::Text { cx, top, size, text } => {
                let _ = writeln!(
                    s,
                    "<text x=\"{cx:.2}\" y=\"{:.2}\" font-family=\"Ubuntu, 'Helvetica Neue', Helvetica, Arial, sans-serif\" \
                     font-size=\"{size:.2}\" text-anchor=\"middle\" fill=\"#000\">{}</text>",
                    baseline(*top, *size),
                    xml_escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    Ok(s)
}

/// The scene as a one-page PDF of the scene's physical size (`ppi` canvas pixels per inch).
pub fn pdf(scene: &Scene, ppi: f64) -> Result<Vec<u8>> {
    let k = (72.0 / ppi) as f32; // points per canvas pixel
    let (pw, ph) = (scene.width as f32 * k, scene.height as f32 * k);
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let page = Ref::new(3);
    let content_id = Ref::new(4);
    let font_id = Ref::new(5);
    let mut next = 6;
    let mut images = Vec::new(); // (name, ref)
    let mut c = Content::new();
    // canvas coordinates: origin top-left, y down
    c.save_state();
    c.transform([k, 0.0, 0.0, -k, 0.0, ph]);
    for e in &scene.elements {
        match e {
            Element::Image { x, y, w, h, img } => {
                let id = Ref::new(next);
                next += 1;
                let name = format!("Im{}", images.len());
                let gray = embed::is_gray(img);
                let raw: Vec<u8> = if gray { img.pixels().map(|p| p[0]).collect() } else { img.as_raw().clone() };
                let data = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
                let mut x_obj = pdf.image_xobject(id, &data);
                x_obj.filter(Filter::FlateDecode);
                x_obj.width(img.width() as i32);
                x_obj.height(img.height() as i32);
                if gray {
                    x_obj.color_space().device_gray();
                } else {
                    x_obj.color_space().device_rgb();
                }
                x_obj.bits_per_component(8);
                x_obj.interpolate((*w, *h) == img.dimensions());
                x_obj.finish();
                c.save_state();
                c.transform([*w as f32, 0.0, 0.0, -(*h as f32), *x as f32, (*y + *h) as f32]);
                c.x_object(Name(name.as_bytes()));
                c.restore_state();
                images.push((name, id));
            }
            Element::Frame { x, y, w, h, stroke, color, clip } => {
                let half = *stroke as f32 / 2.0;
                c.save_state();
                c.rect(clip[0] as f32, clip[1] as f32, clip[2] as f32, clip[3] as f32);
                c.clip_nonzero();
                c.end_path();
                c.set_stroke_rgb(color[0] as f32 / 255.0, color[1] as f32 / 255.0, color[2] as f32 / 255.0);
                c.set_line_width(*stroke as f32);
                c.rect(*x as f32 - half, *y as f32 - half, *w as f32 + 2.0 * half, *h as f32 + 2.0 * half);
                c.stroke();
                c.restore_state();
            }
            Element::Text { .. } => {}
        }
    }
    c.restore_state();
    // text in page coordinates (y up), so glyphs are not mirrored
    for e in &scene.elements {
        if let Element::Text { cx, top, size, text } = e {
            let ascii: Vec<u8> =
                text.chars().map(|ch| if ch.is_ascii() && !ch.is_ascii_control() { ch as u8 } else { b'?' }).collect();
            let x = (cx - text_width(text, *size) / 2.0) as f32 * k;
            let y = ph - baseline(*top, *size) as f32 * k;
            c.begin_text();
            c.set_font(Name(b"F1"), *size as f32 * k);
            c.set_fill_gray(0.0);
            c.next_line(x, y);
            c.show(Str(&ascii));
            c.end_text();
        }
    }
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    {
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, pw, ph));
        p.parent(tree);
        p.contents(content_id);
        let mut res = p.resources();
        {
            let mut xs = res.x_objects();
            for (name, id) in &images {
                xs.pair(Name(name.as_bytes()), *id);
            }
        }
        res.fonts().pair(Name(b"F1"), font_id);
    }
    pdf.type1_font(font_id).base_font(Name(b"Helvetica"));
    pdf.stream(content_id, &c.finish());
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn scene() -> Scene {
        let img = Arc::new(image::RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 60, y as u8 * 80, 9])));
        Scene {
            width: 50,
            height: 40,
            elements: vec![
                Element::Image { x: 0, y: 0, w: 4, h: 3, img: img.clone() },
                Element::Image { x: 10, y: 10, w: 8, h: 6, img },
                Element::Frame { x: 10, y: 10, w: 8, h: 6, stroke: 1, color: [255, 0, 0], clip: [0, 0, 50, 40] },
                Element::Text { cx: 25.0, top: 30.0, size: 8.0, text: "A<&>é".into() },
            ],
        }
    }

    #[test]
    fn svg_has_every_element() {
        let s = svg(&scene(), 100.0).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("width=\"0.5000in\"") && s.contains("viewBox=\"0 0 50 40\""));
        assert_eq!(s.matches("<image ").count(), 2);
        assert_eq!(s.matches("image-rendering:pixelated").count(), 1, "only the enlarged image");
        assert!(s.contains("stroke=\"rgb(255,0,0)\"") && s.contains(">A&lt;&amp;&gt;é</text>"));
    }

    #[test]
    fn pdf_is_one_page_with_two_images() {
        let p = pdf(&scene(), 72.0).unwrap();
        let text = String::from_utf8_lossy(&p);
        assert!(text.starts_with("%PDF-") && text.trim_end().ends_with("%%EOF"));
        assert!(text.contains("/MediaBox [0 0 50 40]"), "{}", &text[..400.min(text.len())]);
        assert_eq!(text.matches("/Subtype /Image").count(), 2);
        assert!(text.contains("/BaseFont /Helvetica"));
    }
}
