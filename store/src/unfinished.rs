//! Snapshots sled never finished. sled 0.34 writes a snapshot as `snap.<lsn>.generating`, syncs
//! it and renames it `snap.<lsn>`; but when it opens a database it reads the highest-named file
//! that starts `snap.`, an unfinished one included. A process killed, or a power cut, between the
//! creation and the rename leaves a partial one, and every later open fails with "Read corrupted
//! data": the whole archive unreadable for a file that was never part of it (found by
//! `tests/power_cut.rs`). Such a file holds nothing the log does not: the older snapshot and the
//! log recover the same state, so it is removed before sled opens the database.

use std::os::fd::AsRawFd;
use std::path::Path;

/// Removes the unfinished snapshots in the sled directory `dir`, but only while holding the lock
/// sled takes on `db` (a `flock`): a process that has the database open may be writing one.
/// Returns how many were removed.
pub(crate) fn remove_unfinished_snapshots(dir: &Path) -> std::io::Result<usize> {
    let db = match std::fs::File::open(dir.join("db")) {
        Ok(db) => db,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // SAFETY: flock on a descriptor `db` keeps open; the lock goes with it when `db` is dropped.
    if unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        // Held: the holder's snapshot may be under way; sled's own open reports the lock.
        return Ok(0);
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(dir.join(name.as_ref()))?;
            removed += 1;
        }
    }
    if removed > 0 {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use crate::tests::rec;
    use crate::{Archive, Filter, Order};

    /// What a kill between a snapshot's creation and its rename leaves: a partial file.
    fn leave_unfinished(dir: &std::path::Path) -> std::path::PathBuf {
        let partial = dir.join("snap.FFFFFFFFFFFFFFFF.generating");
        std::fs::write(&partial, [7u8; 215]).unwrap();
        partial
    }

    #[test]
    fn an_archive_with_an_unfinished_snapshot_opens_with_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        let archive = Archive::open(&path).unwrap();
        archive.append(&mut [rec("r", 1, "1+2", true), rec("r", 1, "3*4", true)]).unwrap();
        archive.flush().unwrap();
        drop(archive);
        let partial = leave_unfinished(&path);
        // sled alone reads it as its newest snapshot and refuses the database.
        let err = sled::Config::new().path(&path).open().map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("corrupted"), "{err}");
        let archive = Archive::open_existing(&path).unwrap();
        let texts: Vec<String> =
            archive.scan(&Filter::default(), Order::Ascending, None).map(|r| r.unwrap().text).collect();
        assert_eq!(texts, ["1+2", "3*4"]);
        assert!(!partial.exists());
    }

    #[test]
    fn a_snapshot_under_way_in_an_open_archive_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        let _held = Archive::open(&path).unwrap();
        let partial = leave_unfinished(&path);
        assert_eq!(super::remove_unfinished_snapshots(&path).unwrap(), 0);
        assert!(partial.exists());
    }
}
