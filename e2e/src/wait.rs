//! Polling with a deadline: every wait in the suite is bounded and says what it waited for.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Calls `f` every `interval` until it returns `Some`, an error, or `timeout` passes.
/// On timeout the error includes the last state `f` reported through `last`.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut(&mut String) -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        if let Some(v) = f(&mut last)? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
