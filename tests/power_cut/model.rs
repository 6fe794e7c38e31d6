//! A file system that remembers what was synced, fed by the trace `trace_writes.rs` records, and
//! able to say what a directory could hold after a power cut at any point of that trace.
//!
//! The model is POSIX's promise, not one file system's habits: a file's bytes are durable once the
//! file is `fsync`ed (or `fdatasync`ed); a name (a creation, a rename, a removal) once its
//! directory is. After a cut, each file holds its synced bytes plus any of the writes since, each
//! kept or lost on its own and a kept one possibly torn short (the page cache writes back in no
//! order); each directory holds its synced names plus a prefix of the name changes since (a
//! journal keeps them in order).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One change the traced process made, as the trace records it.
#[derive(Debug, Clone)]
pub enum Event {
    Open {
        inode: u64,
        truncate: bool,
        path: PathBuf,
    },
    Write {
        inode: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    Truncate {
        inode: u64,
        len: u64,
    },
    Sync {
        inode: u64,
        dir: bool,
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Unlink(PathBuf),
    Mkdir(PathBuf),
    Rmdir(PathBuf),
    /// A write the model cannot follow (`copy_file_range`, `fallocate`, ...).
    Other(String),
}

const O_TRUNC: u32 = 0o1000;

/// Reads a trace file.
pub fn parse(trace: &[u8]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut at = 0;
    let path = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
    while at < trace.len() {
        let header = trace.get(at..at + 5).ok_or_else(|| format!("a cut event header at byte {at}"))?;
        let len = u32::from_le_bytes(header[1..5].try_into().unwrap()) as usize;
        let body = trace.get(at + 5..at + 5 + len).ok_or_else(|| format!("a cut event at byte {at}"))?;
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap());
        let split = |b: &[u8]| {
            let nul = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            (path(&b[..nul]), path(b.get(nul + 1..).unwrap_or_default()))
        };
        events.push(match header[0] {
            b'o' => Event::Open {
                inode: u64_at(0),
                truncate: u32::from_le_bytes(body[8..12].try_into().unwrap()) & O_TRUNC != 0,
                path: path(&body[12..]),
            },
            b'w' => Event::Write { inode: u64_at(0), offset: u64_at(8), bytes: body[16..].to_vec() },
            b't' => Event::Truncate { inode: u64_at(0), len: u64_at(8) },
            b's' => Event::Sync { inode: u64_at(0), dir: body[8] != 0, path: path(&body[9..]) },
            b'r' => {
                let (from, to) = split(body);
                Event::Rename { from, to }
            }
            b'u' => Event::Unlink(path(body)),
            b'm' => Event::Mkdir(path(body)),
            b'd' => Event::Rmdir(path(body)),
            b'x' => Event::Other(String::from_utf8_lossy(body).replace('\0', " ")),
            tag => return Err(format!("unknown event {tag:#04x} at byte {at}")),
        });
        at += 5 + len;
    }
    Ok(events)
}

/// A change to a file's bytes not yet synced.
#[derive(Debug, Clone)]
enum DataChange {
    Write { offset: u64, bytes: Vec<u8> },
    Truncate(u64),
}

impl DataChange {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            DataChange::Write { offset, bytes } => {
                let end = *offset as usize + bytes.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[*offset as usize..end].copy_from_slice(bytes);
            }
            DataChange::Truncate(len) => content.resize(*len as usize, 0),
        }
    }
}

/// A file: what a cut keeps for sure, and what it may keep.
#[derive(Debug, Clone, Default)]
struct File {
    synced: Vec<u8>,
    unsynced: Vec<DataChange>,
}

impl File {
    fn current(&self) -> Vec<u8> {
        let mut content = self.synced.clone();
        for change in &self.unsynced {
            change.apply(&mut content);
        }
        content
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(usize),
    Dir,
}

/// A change to a directory's names not yet synced.
#[derive(Debug, Clone)]
enum NameChange {
    Link(PathBuf, Node),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl NameChange {
    fn apply(&self, names: &mut BTreeMap<PathBuf, Node>) {
        match self {
            NameChange::Link(path, node) => {
                names.insert(path.clone(), *node);
            }
            NameChange::Remove(path) => {
                names.remove(path);
            }
            NameChange::Rename(from, to) => {
                // A directory moves with everything under it; whatever `to` named is replaced.
                let moved: Vec<(PathBuf, Node)> =
                    names.iter().filter(|(p, _)| p.starts_with(from)).map(|(p, n)| (p.clone(), *n)).collect();
                if moved.is_empty() {
                    return;
                }
                names.retain(|p, _| !p.starts_with(to) && !p.starts_with(from));
                for (p, n) in moved {
                    names.insert(to.join(p.strip_prefix(from).unwrap()), n);
                }
            }
        }
    }
}

/// What a cut keeps of the changes not yet synced.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// Nothing: only what was synced.
    SyncedOnly,
    /// Everything the process wrote (what a killed process leaves).
    Everything,
    /// Each unsynced write kept or lost at random, a kept one possibly torn; a random prefix of
    /// each directory's unsynced name changes.
    Random(u64),
}

/// The traced directory, event by event.
#[derive(Debug, Clone)]
pub struct Disk {
    files: Vec<File>,
    /// The file each inode number names now (numbers are reused after a removal).
    inodes: BTreeMap<u64, usize>,
    names: BTreeMap<PathBuf, Node>,
    synced_names: BTreeMap<PathBuf, Node>,
    /// Unsynced name changes, by the directory whose sync makes them durable.
    unsynced_names: BTreeMap<PathBuf, Vec<NameChange>>,
}

impl Disk {
    /// The directory `root` as it is now, taken as synced whole.
    pub fn snapshot(root: &Path) -> std::io::Result<Disk> {
        use std::os::unix::fs::MetadataExt;
        let mut disk = Disk {
            files: Vec::new(),
            inodes: BTreeMap::new(),
            names: BTreeMap::new(),
            synced_names: BTreeMap::new(),
            unsynced_names: BTreeMap::new(),
        };
        let mut stack = vec![root.to_path_buf()];
        disk.names.insert(root.to_path_buf(), Node::Dir);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let (path, kind) = (entry.path(), entry.file_type()?);
                if kind.is_dir() {
                    disk.names.insert(path.clone(), Node::Dir);
                    stack.push(path);
                } else if kind.is_file() {
                    let file = disk.files.len();
                    disk.files.push(File { synced: std::fs::read(&path)?, unsynced: Vec::new() });
                    disk.inodes.insert(entry.metadata()?.ino(), file);
                    disk.names.insert(path, Node::File(file));
                }
            }
        }
        disk.synced_names = disk.names.clone();
        Ok(disk)
    }

    fn change_names(&mut self, change: NameChange, dir_of: &Path) {
        change.apply(&mut self.names);
        let dir = dir_of.parent().unwrap_or(dir_of).to_path_buf();
        self.unsynced_names.entry(dir).or_default().push(change);
    }

    fn linked(&self, file: usize) -> bool {
        self.names.values().any(|n| *n == Node::File(file))
    }

    fn file_of(&mut self, inode: u64) -> Result<&mut File, String> {
        let file =
            *self.inodes.get(&inode).ok_or_else(|| format!("a write to inode {inode}, never opened"))?;
        Ok(&mut self.files[file])
    }

    /// Applies one event. An event the model cannot follow is an error.
    pub fn apply(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::Open { inode, truncate, path } => {
                let known = self.inodes.get(inode).copied().filter(|&f| self.linked(f));
                match known {
                    Some(file) if self.names.get(path) == Some(&Node::File(file)) => {}
                    Some(_) => {
                        return Err(format!("{} opened under a name the trace never gave it", path.display()))
                    }
                    None => {
                        let file = self.files.len();
                        self.files.push(File::default());
                        self.inodes.insert(*inode, file);
                        self.change_names(NameChange::Link(path.clone(), Node::File(file)), path);
                    }
                }
                if *truncate {
                    self.file_of(*inode)?.unsynced.push(DataChange::Truncate(0));
                }
            }
            Event::Write { inode, offset, bytes } => {
                self.file_of(*inode)?
                    .unsynced
                    .push(DataChange::Write { offset: *offset, bytes: bytes.clone() });
            }
            Event::Truncate { inode, len } => self.file_of(*inode)?.unsynced.push(DataChange::Truncate(*len)),
            Event::Sync { inode, dir: false, .. } => {
                let file = self.file_of(*inode)?;
                file.synced = file.current();
                file.unsynced.clear();
            }
            Event::Sync { dir: true, path, .. } => {
                for change in self.unsynced_names.remove(path).unwrap_or_default() {
                    change.apply(&mut self.synced_names);
                }
            }
            Event::Rename { from, to } => {
                if !self.names.contains_key(from) {
                    // A name the model never saw made (a socket): nothing it holds is data.
                    return Ok(());
                }
                let moved = NameChange::Rename(from.clone(), to.clone());
                // Unsynced changes inside a moved directory are made durable by syncing it under
                // its new name.
                let inside: Vec<PathBuf> =
                    self.unsynced_names.keys().filter(|d| d.starts_with(from)).cloned().collect();
                for d in inside {
                    let changes = self.unsynced_names.remove(&d).unwrap();
                    let renamed = to.join(d.strip_prefix(from).unwrap());
                    self.unsynced_names.entry(renamed).or_default().extend(changes);
                }
                self.change_names(moved, to);
            }
            Event::Unlink(path) | Event::Rmdir(path) => {
                if self.names.contains_key(path) {
                    self.change_names(NameChange::Remove(path.clone()), path);
                }
            }
            Event::Mkdir(path) => self.change_names(NameChange::Link(path.clone(), Node::Dir), path),
            Event::Other(what) => return Err(format!("a write the model cannot follow: {what}")),
        }
        Ok(())
    }

    /// The files a cut of kind `cut` could leave: path → bytes, directories as `None`. A name
    /// whose directory is not there is not reachable, and left out.
    pub fn after(&self, cut: Cut) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut rng = match cut {
            Cut::Random(seed) => Some(ChaCha8Rng::seed_from_u64(seed)),
            _ => None,
        };
        let names = match (cut, rng.as_mut()) {
            (Cut::Everything, _) => self.names.clone(),
            (Cut::SyncedOnly, _) => self.synced_names.clone(),
            (Cut::Random(_), Some(rng)) => {
                let mut names = self.synced_names.clone();
                for changes in self.unsynced_names.values() {
                    let kept = rng.random_range(0..=changes.len());
                    for change in &changes[..kept] {
                        change.apply(&mut names);
                    }
                }
                names
            }
            (Cut::Random(_), None) => unreachable!(),
        };
        let root = self.root();
        let mut out = BTreeMap::new();
        for (path, node) in &names {
            let mut dirs = path.ancestors().skip(1).take_while(|a| a.starts_with(root));
            if !dirs.all(|d| names.get(d) == Some(&Node::Dir)) {
                continue;
            }
            out.insert(
                path.clone(),
                match node {
                    Node::Dir => None,
                    Node::File(f) => Some(self.bytes_after(*f, cut, rng.as_mut())),
                },
            );
        }
        out
    }

    fn bytes_after(&self, file: usize, cut: Cut, rng: Option<&mut ChaCha8Rng>) -> Vec<u8> {
        let file = &self.files[file];
        match (cut, rng) {
            (Cut::SyncedOnly, _) => file.synced.clone(),
            (Cut::Everything, _) => file.current(),
            (Cut::Random(_), Some(rng)) => {
                let mut content = file.synced.clone();
                for change in &file.unsynced {
                    if rng.random_bool(0.5) {
                        continue;
                    }
                    match change {
                        DataChange::Write { offset, bytes } if rng.random_bool(0.25) => {
                            let torn = rng.random_range(0..=bytes.len());
                            DataChange::Write { offset: *offset, bytes: bytes[..torn].to_vec() }
                                .apply(&mut content)
                        }
                        change => change.apply(&mut content),
                    }
                }
                content
            }
            (Cut::Random(_), None) => unreachable!(),
        }
    }

    /// The traced directory: the shortest name the model holds.
    fn root(&self) -> &Path {
        self.names.keys().next().expect("the root is always named")
    }
}

/// Writes a state `after` returned under `to`, its root renamed from `root`.
pub fn materialize(
    state: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    root: &Path,
    to: &Path,
) -> std::io::Result<()> {
    for (path, content) in state {
        let target = to.join(path.strip_prefix(root).expect("under the root"));
        match content {
            None => std::fs::create_dir_all(&target)?,
            Some(bytes) => {
                std::fs::create_dir_all(target.parent().unwrap())?;
                std::fs::write(&target, bytes)?;
            }
        }
    }
    Ok(())
}
