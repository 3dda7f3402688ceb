//! Named method parameters: `--param key=value` on the command line and the defaults listed by
//! `mmif models`.

use crate::{Error, Result};

/// One parameter of a method: its key, current value and meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub key: &'static str,
    pub value: String,
    pub help: &'static str,
}

/// A method's parameter set: settable by key, listable with current values.
pub trait Params {
    /// Sets parameter `key` from its textual `value`; unknown keys and invalid values are errors.
    fn set(&mut self, key: &str, value: &str) -> Result<()>;
    /// Every parameter with its current value, in a fixed order.
    fn list(&self) -> Vec<ParamInfo>;
}

pub(crate) fn bad(method: &'static str, msg: String) -> Error {
    Error::InvalidParameter { method, msg }
}

/// Error for a key the method does not have, naming the keys it has.
pub(crate) fn unknown_key(method: &'static str, key: &str, known: &[ParamInfo]) -> Error {
    let keys: Vec<&str> = known.iter().map(|p| p.key).collect();
    if keys.is_empty() {
        bad(method, format!("`{method}` has no parameters (got `{key}`)"))
    } else {
        bad(method, format!("no parameter `{key}` (parameters: {})", keys.join(", ")))
    }
}

/// Parses an integer in `min..=max`.
pub(crate) fn parse_usize(method: &'static str, key: &str, value: &str, min: usize, max: usize) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(method, format!("{key} must be an integer in {min}..={max}, got `{value}`"))),
    }
}

/// Parses an odd integer in `min..=max`.
pub(crate) fn parse_odd(method: &'static str, key: &str, value: &str, min: usize, max: usize) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) && n % 2 == 1 => Ok(n),
        _ => Err(bad(method, format!("{key} must be an odd integer in {min}..={max}, got `{value}`"))),
    }
}

/// Parses a finite number `> 0`.
pub(crate) fn parse_positive(method: &'static str, key: &str, value: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(bad(method, format!("{key} must be a finite number > 0, got `{value}`"))),
    }
}

/// Checks that each named value is finite and `> 0` (the parameter structs' `validate`).
pub(crate) fn require_positive(method: &'static str, values: &[(&str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((name, v)) => Err(bad(method, format!("{name} must be finite and > 0, got {v}"))),
        None => Ok(()),
    }
}

/// Checks that an iteration count is at most `max` (bounded work per call).
pub(crate) fn require_at_most(method: &'static str, name: &str, value: usize, max: usize) -> Result<()> {
    if value > max { Err(bad(method, format!("{name} must be <= {max}, got {value}"))) } else { Ok(()) }
}

/// Shorthand for building a [`ParamInfo`].
pub(crate) fn info(key: &'static str, value: impl ToString, help: &'static str) -> ParamInfo {
    ParamInfo { key, value: value.to_string(), help }
}
