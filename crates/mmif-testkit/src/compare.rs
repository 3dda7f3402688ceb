//! Differences between computed and reference values, and the closeness checks of the parity
//! tests (each logs the difference it measured, for the parity table).

/// Largest `|a - b|` over two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Largest `|a - b| / max(1, |b|)` over two equally long slices.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
}

/// Asserts that `got` matches `want` to `tol` (max absolute difference).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let d = max_abs_diff(got, want);
    assert!(d <= tol, "{what}: max abs difference {d:e} > {tol:e}");
    eprintln!("{what}: max abs difference {d:e}");
}

/// Asserts closeness relative to the largest magnitude of `want` (for intermediates).
pub fn assert_close_rel(what: &str, got: &[f32], want: &[f32], rel: f32) {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let d = max_abs_diff(got, want);
    assert!(d <= rel * scale, "{what}: max abs difference {d:e} > {rel:e} × {scale}");
    eprintln!("{what}: max abs difference {d:e} (scale {scale})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
        assert_eq!(max_rel_diff(&[1.0, 20.0], &[1.0, 10.0]), 1.0);
        assert!(std::panic::catch_unwind(|| assert_close("x", &[1.0], &[2.0], 0.5)).is_err());
    }
}
