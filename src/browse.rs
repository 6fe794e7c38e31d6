//! `selfplay archive browse`.
use crate::commands::archive::Access;
pub fn run(_access: Access) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
