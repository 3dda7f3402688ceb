//! Running a binary of the workspace from its integration tests.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs the binary `exe` (`env!("CARGO_BIN_EXE_mmif")`) with `args`, and echoes its stderr to
/// the test's log.
pub fn run<I, S>(exe: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(exe).args(args).output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    eprint!("{}", stderr(&out));
    out
}

/// [`run`] with extra environment variables (`(name, value)`), e.g. a job array's task index.
pub fn run_with_env<I, S>(exe: &str, args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(exe);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    eprint!("{}", stderr(&out));
    out
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
