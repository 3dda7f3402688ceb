//! `--shard K/N` and `--shard auto` for the folder modes of `mmif fuse` and `mmif eval`: a job
//! array splits a dataset deterministically, each task taking every N-th pair.
//!
//! The pairs are sorted by file stem (as the folders are paired) and the i-th pair (from 0) goes
//! to shard `i mod N`, so every task of an array computes the same split from the same folders
//! and the shards together cover every pair exactly once. `auto` reads the task's index and count
//! from the scheduler: Slurm's `SLURM_ARRAY_TASK_ID` (minus `SLURM_ARRAY_TASK_MIN`, so
//! `--array=1-8` works too) and `SLURM_ARRAY_TASK_COUNT`, or Kubernetes' `JOB_COMPLETION_INDEX`
//! (an Indexed Job) with the count in `JOB_COMPLETIONS` (set it in the manifest to
//! `.spec.completions`; Kubernetes does not export it).

use anyhow::{Context, Result, bail};

/// One shard of a split: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` (0 ≤ K < N) or `auto` (from the environment through `env`).
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("auto") {
            return Shard::from_env(env);
        }
        let (k, n) = spec.split_once('/').with_context(|| format!("--shard expects K/N or auto, got `{spec}`"))?;
        let index = k.trim().parse::<usize>().with_context(|| format!("--shard {spec}: `{k}` is not an index"))?;
        let count = n.trim().parse::<usize>().with_context(|| format!("--shard {spec}: `{n}` is not a count"))?;
        Shard::new(index, count).with_context(|| format!("--shard {spec}"))
    }

    fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 {
            bail!("the number of shards must be at least 1");
        }
        if index >= count {
            bail!("shard index {index} is out of range: shards are numbered 0 to {} of {count}", count - 1);
        }
        Ok(Shard { index, count })
    }

    fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let num = |name: &str| -> Result<Option<usize>> {
            env(name)
                .map(|v| v.trim().parse::<usize>().with_context(|| format!("{name}={v} is not a non-negative integer")))
                .transpose()
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let count = num("SLURM_ARRAY_TASK_COUNT")?
                .context("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index =
                id.checked_sub(min).context("--shard auto: SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?;
            return Shard::new(index, count).context("--shard auto (Slurm: use a contiguous --array range)");
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("JOB_COMPLETIONS")?.context(
                "--shard auto: JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not (set it in the Job's env to .spec.completions)",
            )?;
            return Shard::new(index, count).context("--shard auto (Kubernetes Indexed Job)");
        }
        bail!(
            "--shard auto: no array task found (SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT for Slurm, \
             JOB_COMPLETION_INDEX/JOB_COMPLETIONS for a Kubernetes Indexed Job); give --shard K/N instead"
        )
    }

    /// The items of this shard: every `count`-th from `index`, order kept.
    pub fn select<T>(self, items: Vec<T>) -> Vec<T> {
        items.into_iter().enumerate().filter(|(i, _)| i % self.count == self.index).map(|(_, t)| t).collect()
    }

    /// Parses an optional `--shard` against the process environment.
    pub fn from_arg(spec: Option<&str>) -> Result<Option<Shard>> {
        spec.map(|s| Shard::parse(s, |k| std::env::var(k).ok())).transpose()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn parses_explicit_shards() {
        assert_eq!(Shard::parse("1/3", env(&[])).unwrap(), Shard { index: 1, count: 3 });
        for bad in ["3/3", "1/0", "x/2", "2", "-1/2"] {
            assert!(Shard::parse(bad, env(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_slurm_and_kubernetes() {
        let slurm = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "1")];
        assert_eq!(Shard::parse("auto", env(&slurm)).unwrap(), Shard { index: 3, count: 4 });
        let k8s = [("JOB_COMPLETION_INDEX", "0"), ("JOB_COMPLETIONS", "2")];
        assert_eq!(Shard::parse("AUTO", env(&k8s)).unwrap(), Shard { index: 0, count: 2 });
        let e = Shard::parse("auto", env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err();
        assert!(format!("{e:#}").contains("JOB_COMPLETIONS"), "{e:#}");
        assert!(Shard::parse("auto", env(&[])).is_err());
    }

    #[test]
    fn shards_partition_the_items() {
        let items: Vec<usize> = (0..11).collect();
        let mut all: Vec<usize> = (0..3).flat_map(|k| Shard { index: k, count: 3 }.select(items.clone())).collect();
        all.sort();
        assert_eq!(all, items);
        assert_eq!(Shard { index: 1, count: 3 }.select(items), vec![1, 4, 7, 10]);
    }
}
