//! Files that declare a size they do not hold: the header of a PNG, JPEG, BMP, TIFF or `.npy`
//! image saying `width × height` followed by (almost) no pixel data. A reader that trusts the
//! declared size before checking it allocates gigabytes for a file of a few hundred bytes; the
//! readers of `mmif-io` must refuse them from the header alone.

/// The image formats [`declaring`] can write.
pub const FORMATS: [&str; 5] = ["png", "jpg", "bmp", "tif", "npy"];

/// A file of format `ext` (one of [`FORMATS`]) whose header declares a `width × height` 8-bit gray
/// image (float32 for `.npy`) but which holds no more than a few bytes of pixel data.
///
/// # Panics
/// On an unknown `ext`, or a size the format cannot declare (JPEG: 65535 a side).
pub fn declaring(ext: &str, width: u32, height: u32) -> Vec<u8> {
    match ext {
        "png" => png(width, height),
        "jpg" => jpeg(width, height),
        "bmp" => bmp(width, height),
        "tif" => tiff(width, height),
        "npy" => npy(width, height),
        e => panic!("no declaring-file writer for .{e}"),
    }
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray, deflate, adaptive filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A complete zlib stream of a few zero bytes (stored block): far less than the image.
    png_chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0, 0x00, 0x04, 0x00, 0x01]);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (u16::try_from(width).expect("JPEG width"), u16::try_from(height).expect("JPEG height"));
    let mut out = vec![0xFF, 0xD8]; // SOI
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]); // DQT, table 0
    out.extend(std::iter::repeat_n(1u8, 64));
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8]); // SOF0, 8-bit
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&[1, 1, 0x11, 0]); // one component, 1×1 sampling, table 0
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0]); // SOS (default Huffman tables)
    out.extend_from_slice(&[0x00, 0x00, 0xFF, 0xD9]); // a little data, EOI
    out
}

fn bmp(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&62u32.to_le_bytes()); // file size (of this file)
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    out.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // planes
    out.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    out.extend_from_slice(&[0; 24]); // BI_RGB, image size 0, resolution, palette
    out.extend_from_slice(&[0; 8]);
    out
}

fn tiff(width: u32, height: u32) -> Vec<u8> {
    // (tag, type, value): type 3 = SHORT, 4 = LONG.
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),                            // bits per sample
        (259, 3, 1),                            // no compression
        (262, 3, 1),                            // black is zero
        (273, 4, 8),                            // strip offset: anywhere
        (277, 3, 1),                            // samples per pixel
        (278, 4, height),                       // rows per strip
        (279, 4, width.saturating_mul(height)), // strip byte count
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, v) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if ty == 3 {
            out.extend_from_slice(&(v as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // no further IFD
    out
}

fn npy(width: u32, height: u32) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({height}, {width}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&[0; 16]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_of_iend_is_pngs() {
        assert_eq!(super::crc32(b"IEND"), 0xAE42_6082);
    }
}
