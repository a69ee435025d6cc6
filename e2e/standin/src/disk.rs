//! The top-level (disk) action: implemented in the next change.
use anyhow::{Result, bail};

use crate::cli::Flags;

pub fn run(_flags: &Flags) -> Result<()> {
    bail!("the top-level disk action is not implemented by the stand-in yet")
}
