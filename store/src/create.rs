//! A new archive appears whole or not at all. sled writes its first files (`conf`, then `db`)
//! one after the other, and the schema version is a key written after them: a run killed in
//! between left a directory that every reader called "not a selfplay archive" and that a writer
//! whose `db` file was missing refused for good (found by `tests/reliability.rs`: a kill landing
//! while the archive was being made). So the database is made beside its place (`NAME.creating`), its schema
//! written and flushed, and the directory renamed into place, which the file system does at once.

use std::path::{Path, PathBuf};

use crate::{Result, StoreError, SCHEMA_KEY, SCHEMA_VERSION};

/// Creates an empty archive at `path`, which is absent or an empty directory. A staging
/// directory a kill left behind is removed first.
pub(crate) fn create_whole(path: &Path) -> Result<()> {
    let staging = staging_path(path);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| unfinished(&staging, e))?;
    }
    {
        let sled_err = |cause| StoreError::Sled { path: staging.clone(), cause };
        let db = sled::Config::new().path(&staging).open().map_err(sled_err)?;
        db.open_tree("meta")
            .map_err(sled_err)?
            .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
            .map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
    }
    // Onto nothing, or onto the empty directory: rename(2) replaces an empty one.
    std::fs::rename(&staging, path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("archive at {}: moving the new archive into place: {e}", path.display()),
        )
    })?;
    // The rename is durable once the directory holding both names is.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

/// Where an archive at `path` is made before it is moved there: `archive` → `archive.creating`.
pub(crate) fn staging_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "archive".into());
    name.push(".creating");
    path.with_file_name(name)
}

fn unfinished(staging: &Path, e: std::io::Error) -> StoreError {
    std::io::Error::new(
        e.kind(),
        format!("removing {}, an archive a killed run left unfinished: {e}", staging.display()),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Archive;

    #[test]
    fn an_archive_is_made_beside_its_place_and_moved_there_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("archive");
        // What a kill during an earlier creation left: sled's first file, and no schema.
        let staging = staging_path(&path);
        assert_eq!(staging, dir.path().join("run").join("archive.creating"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("conf"), "half").unwrap();
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.next_id(), 1);
        drop(archive);
        assert!(!staging.exists(), "the leftover was not removed");
        // A reader sees a whole, empty archive; a writer reopens it.
        assert_eq!(Archive::open_existing(&path).unwrap().next_id(), 1);
        drop(Archive::open(&path).unwrap());
        // An empty directory is made into an archive the same way.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        drop(Archive::open(&empty).unwrap());
        assert_eq!(Archive::open_existing(&empty).unwrap().next_id(), 1);
        assert!(!staging_path(&empty).exists());
    }
}
