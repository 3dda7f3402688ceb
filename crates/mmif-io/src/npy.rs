//! NumPy `.npy` files holding little-endian float32 in C order (format versions 1.0, 2.0 and 3.0).
//!
//! This is the exchange format of the fixtures (inputs, expected outputs, FILM text features) and
//! the lossless output format of the CLI. Other dtypes and Fortran order are refused with an error
//! that names the file and the offending header field.

use crate::atomic::write_atomic;
use crate::{Error, Plane, Result};
use std::path::Path;

/// The six magic bytes that open every `.npy` file.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a `.npy` file of little-endian float32 (`'<f4'`), C order. Returns the shape and the
/// row-major data. Any other dtype, Fortran order, or a short/long data section is an error.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy_f32(&bytes).map_err(|msg| Error::format(path, format!("not a float32 .npy file: {msg}")))
}

/// Parses the bytes of a `.npy` file (see [`read_npy_f32`]).
pub fn parse_npy_f32(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    parse_npy_f32_limited(bytes, |_| Ok(()))
}

/// [`parse_npy_f32`] that hands the declared shape to `check` before allocating the values.
pub fn parse_npy_f32_limited(
    bytes: &[u8],
    check: impl FnOnce(&[usize]) -> std::result::Result<(), String>,
) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12usize)
        }
        v => return Err(format!("unsupported .npy format version {v}.{}", bytes[7])),
    };
    let end = start.checked_add(hlen).filter(|&e| e <= bytes.len()).ok_or("truncated header")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
    let h = parse_header(header)?;
    match h.descr.as_str() {
        "<f4" => {}
        "=f4" if cfg!(target_endian = "little") => {}
        d => {
            return Err(format!(
                "dtype '{d}' is not supported (only little-endian float32 '<f4'; convert with arr.astype('<f4'))"
            ));
        }
    }
    if h.fortran_order {
        return Err("Fortran-order arrays are not supported (save with np.ascontiguousarray)".into());
    }
    check(&h.shape)?;
    let n = h.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape too large")?;
    let need = n.checked_mul(4).ok_or("shape too large")?;
    let data = &bytes[end..];
    if data.len() != need {
        return Err(format!(
            "data section has {} bytes, shape {:?} needs {need}{}",
            data.len(),
            h.shape,
            if data.len() < need { " (file truncated)" } else { "" }
        ));
    }
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((h.shape, values))
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the Python dict literal of a `.npy` header, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (64, 96), }`.
fn parse_header(h: &str) -> std::result::Result<Header, String> {
    let s = h.trim();
    let inner =
        s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or_else(|| format!("header is not a dict: {s:?}"))?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (key, r) = parse_str_lit(rest)?;
        let r = r.trim_start().strip_prefix(':').ok_or("expected ':' in header")?.trim_start();
        rest = match key.as_str() {
            "descr" => {
                let (v, r) = parse_str_lit(r)
                    .map_err(|_| "'descr' is not a simple type string (structured dtypes are not supported)")?;
                descr = Some(v);
                r
            }
            "fortran_order" => {
                if let Some(r) = r.strip_prefix("False") {
                    fortran = Some(false);
                    r
                } else if let Some(r) = r.strip_prefix("True") {
                    fortran = Some(true);
                    r
                } else {
                    return Err("bad 'fortran_order' value".into());
                }
            }
            "shape" => {
                let r = r.strip_prefix('(').ok_or("bad 'shape' value")?;
                let close = r.find(')').ok_or("bad 'shape' value")?;
                let mut dims = Vec::new();
                for part in r[..close].split(',') {
                    let p = part.trim();
                    if p.is_empty() {
                        continue;
                    }
                    let p = p.strip_suffix('L').unwrap_or(p);
                    dims.push(p.parse::<usize>().map_err(|_| format!("bad dimension {p:?} in 'shape'"))?);
                }
                shape = Some(dims);
                &r[close + 1..]
            }
            other => return Err(format!("unexpected header key '{other}'")),
        };
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(Header {
        descr: descr.ok_or("header lacks 'descr'")?,
        fortran_order: fortran.ok_or("header lacks 'fortran_order'")?,
        shape: shape.ok_or("header lacks 'shape'")?,
    })
}

fn parse_str_lit(s: &str) -> std::result::Result<(String, &str), String> {
    let q = s.chars().next().ok_or("unexpected end of header")?;
    if q != '\'' && q != '"' {
        return Err(format!("expected a quoted string in header at {:?}", s.chars().take(20).collect::<String>()));
    }
    let body = &s[1..];
    let end = body.find(q).ok_or("unterminated string in header")?;
    Ok((body[..end].to_string(), &body[end + 1..]))
}

/// Serialises an array as `.npy` bytes (float32 little-endian, C order, format 1.0, or 2.0 if the
/// header would not fit), padded so the data starts at a multiple of 64 bytes as NumPy does.
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> std::result::Result<Vec<u8>, String> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape too large")?;
    if n != data.len() {
        return Err(format!("shape {shape:?} holds {n} values but {} were given", data.len()));
    }
    let dims = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let build = |prefix: usize| {
        let mut h = dict.clone();
        let total = prefix + h.len() + 1;
        let pad = (64 - total % 64) % 64;
        h.extend(std::iter::repeat_n(' ', pad));
        h.push('\n');
        h
    };
    let mut out = Vec::with_capacity(128 + data.len() * 4);
    out.extend_from_slice(NPY_MAGIC);
    let h1 = build(10);
    if h1.len() <= u16::MAX as usize {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(h1.len() as u16).to_le_bytes());
        out.extend_from_slice(h1.as_bytes());
    } else {
        let h2 = build(12);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(h2.len() as u32).to_le_bytes());
        out.extend_from_slice(h2.as_bytes());
    }
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes a float32 `.npy` file (values written as given), atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let bytes = npy_f32_bytes(shape, data).map_err(|m| Error::format(path, m))?;
    write_atomic(path, &bytes)
}

/// Writes a plane as a float32 H×W `.npy` file, values as given (no scaling), atomically.
pub fn write_npy(path: &Path, plane: &Plane) -> Result<()> {
    check_plane(path, plane)?;
    write_npy_f32(path, &[plane.height, plane.width], &plane.data)
}

pub(crate) fn check_plane(path: &Path, p: &Plane) -> Result<()> {
    if p.width.checked_mul(p.height) != Some(p.data.len()) {
        return Err(Error::format(
            path,
            format!("plane is {}x{} but holds {} values", p.width, p.height, p.data.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `npy` fuzz target: the error message cut the header at byte 20, inside a
    /// two-byte character, and panicked.
    #[test]
    fn a_header_with_multibyte_text_is_an_error_not_a_panic() {
        let s = format!("{}\u{340}rest", "a".repeat(19));
        assert!(s.get(..20).is_none(), "byte 20 is inside the character");
        assert!(parse_str_lit(&s).is_err());
        let header = format!("{{'descr': '<f4', 'fortran_order': False, {s}: 1, 'shape': (1,), }}");
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert!(parse_npy_f32(&bytes).unwrap_err().contains("quoted string"));
    }
}
