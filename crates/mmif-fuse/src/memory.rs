//! Peak-memory estimates of the networks, checked against the memory available before a pair is
//! fused, so that an image too large for the machine is refused with an error naming what bounds
//! the memory instead of driving the machine into swap or the OOM killer.
//!
//! A network's peak resident memory grows linearly with the pixels of one pass: a fixed part
//! (weights, runtime, buffers) plus a per-pixel part (its full-resolution feature maps). The two
//! coefficients of each network ([`PeakModel`] in the registry) are fitted to `mmif bench`'s
//! peak RSS at two sizes (`docs/hostile_inputs.md` has the measurements and the command).

use anyhow::{Result, bail};

/// Peak resident bytes of one pass over `pixels` pixels: `base + per_pixel · pixels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeakModel {
    pub base: u64,
    pub per_pixel: u64,
}

impl PeakModel {
    pub fn bytes(&self, pixels: u64) -> u64 {
        self.base.saturating_add(self.per_pixel.saturating_mul(pixels))
    }
}

/// What a fuser expects to need for one image, and how a user can lower it.
pub struct Estimate {
    pub bytes: u64,
    /// The flag or the step that bounds the memory, for the error message.
    pub remedy: String,
    /// What the fuser chose for this size on its own (e.g. CDDFuse's bands), for the user.
    pub note: Option<String>,
}

/// `MemAvailable` of `/proc/meminfo` in bytes (`None` where it cannot be read).
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident bytes of this process now (`VmRSS`), already counted in an estimate's fixed part.
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn gb(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1e9)
}

/// Refuses to run `what` on a `width × height` image when its estimated peak exceeds what this
/// process has plus what the machine has available. Unknown availability passes. `skip` says how
/// the caller runs anyway (`pass --no-memory-check`, `pass memory_check=False`).
pub fn check(what: &str, width: usize, height: usize, est: &Estimate, skip: &str) -> Result<()> {
    let Some(limit) = limit() else { return Ok(()) };
    check_against(what, width, height, est, limit, skip)
}

/// The memory this process may reach: what it has plus what the machine has available (`None`
/// where that cannot be read).
pub fn limit() -> Option<u64> {
    available().map(|avail| avail.saturating_add(resident()))
}

fn check_against(what: &str, width: usize, height: usize, est: &Estimate, limit: u64, skip: &str) -> Result<()> {
    if est.bytes > limit {
        bail!(
            "{what} on {width}×{height} needs about {} at its peak, more than the {} this machine has available; {}, or {skip} to try anyway",
            gb(est.bytes),
            gb(limit),
            est.remedy
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_naming_the_remedy_and_the_override() {
        let m = PeakModel { base: 100, per_pixel: 10 };
        assert_eq!(m.bytes(5), 150);
        assert_eq!(m.bytes(u64::MAX), u64::MAX);
        let est = Estimate { bytes: m.bytes(5), remedy: "use --tiling tile".into(), note: None };
        let skip = "pass --no-memory-check";
        assert!(check_against("emma", 5, 1, &est, 150, skip).is_ok());
        let e = check_against("emma", 5, 1, &est, 149, skip).unwrap_err().to_string();
        assert!(e.contains("emma on 5×1") && e.contains("--tiling tile") && e.contains("--no-memory-check"), "{e}");
    }

    #[test]
    fn meminfo_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(available().is_some_and(|b| b > 0));
            assert!(resident() > 0);
        }
    }
}
