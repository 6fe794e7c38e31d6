//! Records every change a process makes to the files under one directory, for the power-cut test
//! (`tests/power_cut.rs`). Built on its own as a shared library and loaded with `LD_PRELOAD`, it
//! wraps libc's calls that write, truncate, sync, create, rename and remove, lets each through,
//! and appends what succeeded to a trace: enough to rebuild the directory as it would be after a
//! power cut at any moment, keeping only what was synced.
//!
//! `TRACE_WRITES_ROOT` names the directory (absolute, without symbolic links); `TRACE_WRITES_OUT`
//! the trace file, outside it. Each event is one `write` to the trace (a tag byte, a little-endian
//! u32 length, the payload), made with a raw system call so that the trace never traces itself.
//! Payloads, integers little-endian:
//!
//! ```text
//! b'o' open      inode u64, flags u32, path        a file under the root opened
//! b'w' write     inode u64, offset u64, bytes      bytes written at an offset
//! b't' truncate  inode u64, length u64
//! b's' sync      inode u64, is_dir u8, path        fsync or fdatasync
//! b'r' rename    from path, 0, to path
//! b'u' unlink    path
//! b'm' mkdir     path
//! b'd' rmdir     path
//! b'x' other     what, 0, path                      a write the model cannot follow
//! ```
//!
//! x86-64 Linux with glibc only: `open`'s mode is read as a plain third argument, which its
//! calling convention allows for a variadic function.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
const AT_FDCWD: c_int = -100;
const AT_REMOVEDIR: c_int = 0x200;
const SEEK_CUR: c_int = 1;
const SYS_WRITE: c_long = 1;
const SYS_OPEN: c_long = 2;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_APPEND: c_int = 0o2000;
const O_CLOEXEC: c_int = 0o2000000;

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn syscall(number: c_long, ...) -> c_long;
    fn lseek64(fd: c_int, offset: i64, whence: c_int) -> i64;
    fn __errno_location() -> *mut c_int;
}

/// The traced directory and the trace's descriptor, once the environment names both.
struct Tracer {
    root: PathBuf,
    out: c_int,
}

fn tracer() -> Option<&'static Tracer> {
    static TRACER: OnceLock<Option<Tracer>> = OnceLock::new();
    TRACER
        .get_or_init(|| {
            let root = PathBuf::from(std::env::var_os("TRACE_WRITES_ROOT")?);
            let out = std::ffi::CString::new(std::env::var_os("TRACE_WRITES_OUT")?.as_bytes()).ok()?;
            // SAFETY: a valid C string; the flags ask for a new or existing file to append to.
            let fd = unsafe { syscall(SYS_OPEN, out.as_ptr(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) };
            (fd >= 0).then_some(Tracer { root, out: fd as c_int })
        })
        .as_ref()
}

/// libc's own `name`, the next definition after this library's.
macro_rules! real {
    ($name:literal: $ty:ty) => {{
        static REAL: OnceLock<usize> = OnceLock::new();
        let f = *REAL.get_or_init(|| {
            // SAFETY: a NUL-terminated name; RTLD_NEXT looks past this library.
            unsafe { dlsym(RTLD_NEXT, concat!($name, "\0").as_ptr().cast()) as usize }
        });
        assert!(f != 0, concat!("trace_writes: no ", $name, " in libc"));
        // SAFETY: the symbol libc exports under this name has this C signature.
        unsafe { std::mem::transmute::<usize, $ty>(f) }
    }};
}

/// Appends one event to the trace, keeping the caller's errno.
fn emit(t: &Tracer, tag: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut event = Vec::with_capacity(5 + len);
    event.push(tag);
    event.extend_from_slice(&(len as u32).to_le_bytes());
    for p in parts {
        event.extend_from_slice(p);
    }
    // SAFETY: errno is thread-local and always valid to read and restore.
    let errno = unsafe { *__errno_location() };
    // SAFETY: a buffer of `event.len()` bytes; one write so that concurrent events never interleave.
    unsafe { syscall(SYS_WRITE, t.out, event.as_ptr(), event.len()) };
    unsafe { *__errno_location() = errno };
}

/// The path a descriptor refers to, when it is under the root.
fn fd_path(t: &Tracer, fd: c_int) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    under(t, path)
}

fn under(t: &Tracer, path: PathBuf) -> Option<PathBuf> {
    path.starts_with(&t.root).then_some(path)
}

/// `path` made absolute against `dirfd` (or the working directory), when it is under the root.
fn arg_path(t: &Tracer, dirfd: c_int, path: *const c_char) -> Option<PathBuf> {
    // SAFETY: libc was handed a valid C string, or the call already failed.
    let p = Path::new(std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(path) }.to_bytes()));
    let base = if p.is_absolute() {
        PathBuf::new()
    } else if dirfd == AT_FDCWD {
        std::env::current_dir().ok()?
    } else {
        std::fs::read_link(format!("/proc/self/fd/{dirfd}")).ok()?
    };
    under(t, base.join(p))
}

fn inode(fd: c_int) -> Option<(u64, bool)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
    Some((meta.ino(), meta.is_dir()))
}

fn record_open(fd: c_int, flags: c_int) {
    let Some(t) = tracer() else { return };
    if fd < 0 {
        return;
    }
    if let (Some(path), Some((ino, false))) = (fd_path(t, fd), inode(fd)) {
        emit(t, b'o', &[&ino.to_le_bytes(), &(flags as u32).to_le_bytes(), path.as_os_str().as_bytes()]);
    }
}

/// Records `n` bytes written at `offset`, or, with no offset, just before where the descriptor now
/// stands (a `write`, appending or not).
fn record_write(fd: c_int, parts: &[&[u8]], offset: Option<i64>, n: isize) {
    let Some(t) = tracer() else { return };
    if n <= 0 {
        return;
    }
    let Some(_) = fd_path(t, fd) else { return };
    let Some((ino, _)) = inode(fd) else { return };
    // SAFETY: lseek on a descriptor that just took a write; SEEK_CUR with 0 moves nothing.
    let offset = offset.unwrap_or_else(|| unsafe { lseek64(fd, 0, SEEK_CUR) } - n as i64);
    let mut left = n as usize;
    let mut data = Vec::with_capacity(left);
    for p in parts {
        let take = left.min(p.len());
        data.extend_from_slice(&p[..take]);
        left -= take;
    }
    emit(t, b'w', &[&ino.to_le_bytes(), &(offset as u64).to_le_bytes(), &data]);
}

fn record_path_event(tag: u8, dirfd: c_int, path: *const c_char) {
    let Some(t) = tracer() else { return };
    if let Some(p) = arg_path(t, dirfd, path) {
        emit(t, tag, &[p.as_os_str().as_bytes()]);
    }
}

/// # Safety
/// libc's `open`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = real!("open": unsafe extern "C" fn(*const c_char, c_int, c_uint) -> c_int)(path, flags, mode);
    record_open(fd, flags);
    fd
}

/// # Safety
/// libc's `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = real!("open64": unsafe extern "C" fn(*const c_char, c_int, c_uint) -> c_int)(path, flags, mode);
    record_open(fd, flags);
    fd
}

/// # Safety
/// libc's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = real!("openat": unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint) -> c_int)(
        dirfd, path, flags, mode,
    );
    record_open(fd, flags);
    fd
}

/// # Safety
/// libc's `openat64`.
#[no_mangle]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = real!("openat64": unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint) -> c_int)(
        dirfd, path, flags, mode,
    );
    record_open(fd, flags);
    fd
}

/// # Safety
/// libc's `write`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: usize) -> isize {
    let n = real!("write": unsafe extern "C" fn(c_int, *const c_void, usize) -> isize)(fd, buf, count);
    if n > 0 {
        record_write(fd, &[std::slice::from_raw_parts(buf.cast(), count)], None, n);
    }
    n
}

/// # Safety
/// libc's `pwrite64`.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, count: usize, offset: i64) -> isize {
    let n = real!("pwrite64": unsafe extern "C" fn(c_int, *const c_void, usize, i64) -> isize)(
        fd, buf, count, offset,
    );
    if n > 0 {
        record_write(fd, &[std::slice::from_raw_parts(buf.cast(), count)], Some(offset), n);
    }
    n
}

/// # Safety
/// libc's `pwrite`.
#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, count: usize, offset: i64) -> isize {
    pwrite64(fd, buf, count, offset)
}

#[repr(C)]
pub struct IoVec {
    base: *const u8,
    len: usize,
}

/// # Safety
/// libc's `writev`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const IoVec, count: c_int) -> isize {
    let n = real!("writev": unsafe extern "C" fn(c_int, *const IoVec, c_int) -> isize)(fd, iov, count);
    if n > 0 {
        let parts: Vec<&[u8]> = std::slice::from_raw_parts(iov, count.max(0) as usize)
            .iter()
            .map(|v| if v.len == 0 { &[][..] } else { std::slice::from_raw_parts(v.base, v.len) })
            .collect();
        record_write(fd, &parts, None, n);
    }
    n
}

/// # Safety
/// libc's `ftruncate64`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, length: i64) -> c_int {
    let r = real!("ftruncate64": unsafe extern "C" fn(c_int, i64) -> c_int)(fd, length);
    if let (0, Some(t)) = (r, tracer()) {
        if let (Some(_), Some((ino, _))) = (fd_path(t, fd), inode(fd)) {
            emit(t, b't', &[&ino.to_le_bytes(), &(length as u64).to_le_bytes()]);
        }
    }
    r
}

/// # Safety
/// libc's `ftruncate`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, length: i64) -> c_int {
    ftruncate64(fd, length)
}

fn record_sync(fd: c_int) {
    let Some(t) = tracer() else { return };
    if let (Some(path), Some((ino, dir))) = (fd_path(t, fd), inode(fd)) {
        emit(t, b's', &[&ino.to_le_bytes(), &[dir as u8], path.as_os_str().as_bytes()]);
    }
}

/// # Safety
/// libc's `fsync`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let r = real!("fsync": unsafe extern "C" fn(c_int) -> c_int)(fd);
    if r == 0 {
        record_sync(fd);
    }
    r
}

/// # Safety
/// libc's `fdatasync`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let r = real!("fdatasync": unsafe extern "C" fn(c_int) -> c_int)(fd);
    if r == 0 {
        record_sync(fd);
    }
    r
}

fn record_rename(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char) {
    let Some(t) = tracer() else { return };
    let (from, to) = (arg_path(t, olddirfd, old), arg_path(t, newdirfd, new));
    if from.is_some() || to.is_some() {
        let name = |p: Option<PathBuf>| p.map(|p| p.into_os_string().into_vec()).unwrap_or_default();
        use std::os::unix::ffi::OsStringExt;
        emit(t, b'r', &[&name(from), &[0], &name(to)]);
    }
}

/// # Safety
/// libc's `rename`.
#[no_mangle]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let r = real!("rename": unsafe extern "C" fn(*const c_char, *const c_char) -> c_int)(old, new);
    if r == 0 {
        record_rename(AT_FDCWD, old, AT_FDCWD, new);
    }
    r
}

/// # Safety
/// libc's `renameat`.
#[no_mangle]
pub unsafe extern "C" fn renameat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char) -> c_int {
    let r = real!("renameat": unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int)(
        od, old, nd, new,
    );
    if r == 0 {
        record_rename(od, old, nd, new);
    }
    r
}

/// # Safety
/// libc's `renameat2`.
#[no_mangle]
pub unsafe extern "C" fn renameat2(
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;
    let r = real!("renameat2": F)(od, old, nd, new, flags);
    if r == 0 {
        if flags & 2 != 0 {
            // RENAME_EXCHANGE swaps two names: not something this directory's writers do.
            record_path_event(b'x', nd, new);
        } else {
            record_rename(od, old, nd, new);
        }
    }
    r
}

/// # Safety
/// libc's `unlink`.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    let r = real!("unlink": unsafe extern "C" fn(*const c_char) -> c_int)(path);
    if r == 0 {
        record_path_event(b'u', AT_FDCWD, path);
    }
    r
}

/// # Safety
/// libc's `unlinkat`.
#[no_mangle]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // The path is made absolute before the call: afterwards the name is gone.
    let target = tracer().and_then(|t| arg_path(t, dirfd, path));
    let r = real!("unlinkat": unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)(dirfd, path, flags);
    if let (0, Some(t), Some(p)) = (r, tracer(), target) {
        emit(t, if flags & AT_REMOVEDIR != 0 { b'd' } else { b'u' }, &[p.as_os_str().as_bytes()]);
    }
    r
}

/// # Safety
/// libc's `mkdir`.
#[no_mangle]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: c_uint) -> c_int {
    let r = real!("mkdir": unsafe extern "C" fn(*const c_char, c_uint) -> c_int)(path, mode);
    if r == 0 {
        record_path_event(b'm', AT_FDCWD, path);
    }
    r
}

/// # Safety
/// libc's `mkdirat`.
#[no_mangle]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: c_uint) -> c_int {
    let r = real!("mkdirat": unsafe extern "C" fn(c_int, *const c_char, c_uint) -> c_int)(dirfd, path, mode);
    if r == 0 {
        record_path_event(b'm', dirfd, path);
    }
    r
}

/// # Safety
/// libc's `rmdir`.
#[no_mangle]
pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    let r = real!("rmdir": unsafe extern "C" fn(*const c_char) -> c_int)(path);
    if r == 0 {
        record_path_event(b'd', AT_FDCWD, path);
    }
    r
}

fn record_other(what: &str, fd: c_int) {
    let Some(t) = tracer() else { return };
    if let Some(p) = fd_path(t, fd) {
        emit(t, b'x', &[what.as_bytes(), &[0], p.as_os_str().as_bytes()]);
    }
}

/// # Safety
/// libc's `copy_file_range`: data the trace cannot see, marked so that the test fails.
#[no_mangle]
pub unsafe extern "C" fn copy_file_range(
    fd_in: c_int,
    off_in: *mut i64,
    fd_out: c_int,
    off_out: *mut i64,
    len: usize,
    flags: c_uint,
) -> isize {
    type F = unsafe extern "C" fn(c_int, *mut i64, c_int, *mut i64, usize, c_uint) -> isize;
    let n = real!("copy_file_range": F)(fd_in, off_in, fd_out, off_out, len, flags);
    if n > 0 {
        record_other("copy_file_range", fd_out);
    }
    n
}

/// # Safety
/// libc's `sendfile64`: as `copy_file_range`.
#[no_mangle]
pub unsafe extern "C" fn sendfile64(out: c_int, input: c_int, offset: *mut i64, count: usize) -> isize {
    let n = real!("sendfile64": unsafe extern "C" fn(c_int, c_int, *mut i64, usize) -> isize)(
        out, input, offset, count,
    );
    if n > 0 {
        record_other("sendfile", out);
    }
    n
}

/// # Safety
/// libc's `fallocate64`: as `copy_file_range`.
#[no_mangle]
pub unsafe extern "C" fn fallocate64(fd: c_int, mode: c_int, offset: i64, len: i64) -> c_int {
    let r = real!("fallocate64": unsafe extern "C" fn(c_int, c_int, i64, i64) -> c_int)(fd, mode, offset, len);
    if r == 0 {
        record_other("fallocate", fd);
    }
    r
}
