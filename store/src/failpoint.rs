//! What a fail point does when a fault test sets it (`SELFPLAY_FAILPOINTS`, docs/RELIABILITY.md):
//! `return` makes the write fail as a full or broken disk would; `return(crash)` ends the process
//! on the spot, as `kill -9` or a power cut would, with nothing flushed or cleaned up.

/// The failure injected at `point`; with `how` = `crash`, the process aborts instead.
pub fn injected(point: &str, how: Option<String>) -> std::io::Error {
    if how.as_deref() == Some("crash") {
        eprintln!("fail point {point}: crashing");
        std::process::abort();
    }
    std::io::Error::other(format!("injected failure at fail point {point}"))
}

/// Sets the fail points `spec` names: `NAME=ACTIONS` separated by `;`, each as the `fail` crate
/// reads them (`2*off->return(crash)`: the first two calls pass, the third crashes).
pub fn configure(spec: &str) -> Result<(), String> {
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, actions) =
            item.split_once('=').ok_or_else(|| format!("fail point {item:?}: expected NAME=ACTIONS"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| format!("fail point {name}: {e}"))?;
    }
    Ok(())
}
