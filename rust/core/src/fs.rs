//! The crate's one way to put a file on disk durably, and the directory fsync that makes a
//! rename durable.
//!
//! [`write_atomically`] writes a uniquely named temporary file in the destination's directory
//! (created with `create_new`, so two writers never share one), writes and fsyncs it, renames
//! it over the destination and fsyncs the directory. Readers therefore see the old file or the
//! new one, never a mix, and after it returns the new file survives a power cut. On any error
//! the temporary file is removed and the destination is untouched. (As tantivy's
//! `MmapDirectory::atomic_write` and `sync_directory` do.)
//!
//! Temporary names are `.<name>.tmp-<pid>-<n>`; [`temp_target`] recognises them, so that a
//! writer can collect the ones a crashed process left behind.
//!
//! In tests, every step that touches the file system (create, write, sync, rename, directory
//! sync, remove) passes through a failure point: a test can make the n-th step fail, once (an
//! I/O error the caller must survive) or for good (a simulated crash: nothing after it reaches
//! the disk, not even clean-up), see [`failpoint`].

use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory of `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A fresh temporary name for a file that will be renamed to `path`: `.<name>.tmp-<pid>-<n>`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("{} is not a file path", path.display())))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id())))
}

/// If `name` is a temporary name made by [`write_atomically`], the name of the file it was
/// going to become (`.<target>.tmp-<pid>-<n>` gives `<target>`).
pub fn temp_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp-")?;
    let (target, suffix) = (&rest[..at], &rest[at + 5..]);
    let (pid, n) = suffix.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (!target.is_empty() && digits(pid) && digits(n)).then_some(target)
}

/// Bytes a streamed writer lets pile up in the page cache before it asks the kernel to start
/// writing them back ([`start_writeback`]).
pub(crate) const WRITEBACK_EVERY: u64 = 32 << 20;

/// Ask the kernel to start writing back `len` bytes of `f` from `offset` now, without waiting
/// for them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`; a no-op elsewhere). A large file
/// written this way as it grows has little left for its final fsync, which otherwise waits for
/// the whole file at the disk's speed. Advisory: errors are ignored here, the fsync reports
/// them.
pub(crate) fn start_writeback(f: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules I/O on it.
        unsafe {
            libc::sync_file_range(
                f.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, offset, len);
}

/// Write `bytes` to `path` atomically and durably (see the module doc).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |f| failpoint::write(f, bytes))
}

/// Open `path` for reading if it is a regular file (links followed). Anything else (a
/// directory, a FIFO, a device) is an `InvalidData` error, found without blocking: the open of
/// a FIFO would wait for a writer forever, and a device would be read without end
/// (breaker36, recheck36: an index file replaced by a FIFO hung open and save).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK); // no effect on a regular file's reads
    }
    let f = o.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"));
    }
    Ok(f)
}

/// Copy the file `src` to `dst` atomically and durably, streaming (for files too large to
/// hold in memory).
pub fn copy_atomically(src: &Path, dst: &Path) -> Result<()> {
    let mut from = open_regular(src).map_err(|e| Error::io(format!("opening {}", src.display()), e))?;
    let mut buf = vec![0u8; 1 << 20];
    write_atomically_with(dst, |f| loop {
        let n = std::io::Read::read(&mut from, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        failpoint::write(f, &buf[..n])?;
    })
}

/// Write `path` atomically and durably with `fill`, which writes the content into the open
/// temporary file.
pub fn write_atomically_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    replace_with(path, fill)?;
    sync_dir(&dir_of(path))
}

/// The first half of [`write_atomically`]: the new content is fsynced and renamed into place
/// (readers see it), but the rename is not durable until [`sync_dir`] of its directory. For
/// commit points, where what happens in memory once the rename is done must not depend on
/// whether the directory sync then succeeds.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |f| failpoint::write(f, bytes))
}

fn replace_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    replace_fill(path, |f, tmp| fill(f).map_err(|e| Error::io(format!("writing {}", tmp.display()), e)))
}

/// [`replace`] with `fill` writing the content into the open temporary file (whose path it
/// gets, for its error messages) and returning what it computed on the way (the file's CRC,
/// say): the file is then fsynced and renamed to `path`, and `fill`'s value returned. On any
/// error, `fill`'s included, the temporary file is removed and `path` is untouched.
pub(crate) fn replace_fill<T>(path: &Path, fill: impl FnOnce(&mut File, &Path) -> Result<T>) -> Result<T> {
    publish_fill(path, fill, false)
}

/// [`replace_fill`] for a file that must not exist yet (a background merge's new segment):
/// the finished temporary file is hard-linked to `path`, which fails with an error naming it if
/// `path` exists, and then unlinked. So a merge that outlives its writer (abandoned by
/// `close(wait_for_merges=False)`) can never replace a file a newer writer committed under the
/// name the merge had reserved; it fails instead, and its temporary file is removed.
pub(crate) fn create_fill<T>(path: &Path, fill: impl FnOnce(&mut File, &Path) -> Result<T>) -> Result<T> {
    publish_fill(path, fill, true)
}

/// [`create_fill`] that also runs `check` on the filled temporary file (its path, and what
/// `fill` returned) while the file is synced, in a thread of its own: work that reads the file
/// back (a deep validation of a merged segment, say) overlaps the wait for the disk instead of
/// following it. An error from `check` is handled as one from `fill`: the temporary file is
/// removed and `path` is untouched. Elsewhere than on Unix (where a file mapped by `check` may
/// not be renamed) `check` runs after the file is in place, on `path`, as a caller would run it:
/// there a failing check leaves the file at `path` (unreferenced by any manifest, so collected
/// as garbage by the next writer), and the error is returned as on Unix.
pub(crate) fn create_fill_check<T: Sync, U: Send>(
    path: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<T>,
    check: impl FnOnce(&Path, &T) -> Result<U> + Send,
) -> Result<(T, U)> {
    if !cfg!(unix) {
        let value = publish_fill(path, fill, true)?;
        let checked = check(path, &value)?;
        return Ok((value, checked));
    }
    let mut checked = None;
    // the check is part of the caller's call: a Ctrl-C cancels it too (breaker28 M1)
    let watch = crate::cancel::watch();
    let value = publish_fill_with(path, fill, true, |f, tmp, value| {
        let (sync, check) = std::thread::scope(|s| {
            let h = std::thread::Builder::new()
                .name("sparsedex-check".into())
                // par::run: the check verifies in parallel, and this thread is no worker of the
                // caller's pool (in a fork() child the global pool it would fall back to has no
                // threads: the merge hung, helper-86)
                .spawn_scoped(s, move || watch.scope(|| crate::par::run(|| check(tmp, value))))
                .map_err(|e| Error::io(format!("starting the thread that checks {}", tmp.display()), e));
            let sync = sync_file(f, tmp);
            let check = h.and_then(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::io(format!("checking {}", tmp.display()), std::io::Error::other("the thread panicked")))
                })
            });
            (sync, check)
        });
        sync?;
        checked = Some(check?);
        Ok(())
    })?;
    let checked = checked
        .ok_or_else(|| Error::io(format!("checking {}", path.display()), std::io::Error::other("not checked")))?;
    Ok((value, checked))
}

/// Write `bytes` into the temporary file `tmp` (open as `f`) in pieces of 8 MiB, checking for a
/// cancelled call ([`crate::cancel::check`]) before each: one write of a merged segment's
/// image (hundreds of MB) took most of a second that a Ctrl-C had to wait (breaker28 M1).
pub(crate) fn write_cancellable(f: &mut File, tmp: &Path, bytes: &[u8]) -> Result<()> {
    for piece in bytes.chunks(8 << 20) {
        crate::cancel::check()?;
        failpoint::write(f, piece).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    }
    Ok(())
}

/// The failure point and `sync_all` of a filled temporary file `tmp`.
fn sync_file(f: &File, tmp: &Path) -> Result<()> {
    failpoint::hit("sync", tmp).map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
    f.sync_all().map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))
}

fn publish_fill<T>(path: &Path, fill: impl FnOnce(&mut File, &Path) -> Result<T>, new: bool) -> Result<T> {
    publish_fill_with(path, fill, new, |f, tmp, _| sync_file(f, tmp))
}

/// [`publish_fill`] with `sync` (given the file, its temporary path and `fill`'s value)
/// making the filled file durable.
fn publish_fill_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<T>,
    new: bool,
    sync: impl FnOnce(&File, &Path, &T) -> Result<()>,
) -> Result<T> {
    let tmp = temp_path(path)?;
    let result = (|| -> Result<T> {
        failpoint::hit("create", &tmp).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let value = fill(&mut f, &tmp)?;
        f.flush().map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        sync(&f, &tmp, &value)?;
        drop(f);
        failpoint::hit("rename", path).map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
        if new {
            let exists = |e| {
                Error::io(
                    format!("creating {}: it exists already (its name was taken by another writer)", path.display()),
                    e,
                )
            };
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&tmp); // a crash here leaves a temporary file, collected later
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(e)),
                // No hard links on this file system (FAT, some network mounts): a rename that
                // checks first (the narrow window left is what the hard link closes elsewhere).
                Err(_) => {
                    if path.exists() {
                        return Err(exists(std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
                    }
                    std::fs::rename(&tmp, path)
                        .map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
                }
            }
        } else {
            std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
        }
        Ok(value)
    })();
    if result.is_err() {
        // Best effort; under a simulated crash this is skipped, as it would be by a real one.
        if failpoint::hit("remove", &tmp).is_ok() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    result
}

/// Fsync a directory, so that the renames and removals inside it are durable. A no-op where
/// directories cannot be opened (Windows, where a rename is made durable by the file system).
pub fn sync_dir(dir: &Path) -> Result<()> {
    failpoint::hit("sync_dir", dir).map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(format!("opening directory {}", dir.display()), e))?;
        d.sync_all().map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    }
    Ok(())
}

/// Remove a file (garbage collection). Errors are returned for the caller to ignore or report.
pub fn remove_file(path: &Path) -> std::io::Result<()> {
    failpoint::hit("remove", path)?;
    std::fs::remove_file(path)
}

/// Failure injection for crash tests (compiled only into the crate's own tests; a no-op
/// otherwise).
pub mod failpoint {
    #[cfg(test)]
    pub use imp::{arm, count, disarm, Mode};

    /// Whether the next step may run (`Ok`), or fails by injection.
    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn hit(_step: &str, _path: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Write `bytes` to `f` (one step).
    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn write(f: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(f, bytes)
    }

    #[cfg(test)]
    pub(crate) use imp::{hit, write};

    #[cfg(test)]
    mod imp {
        use std::cell::RefCell;
        use std::fs::File;
        use std::io::Write;
        use std::path::Path;

        /// What happens at the chosen step.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Mode {
            /// The step fails with an I/O error; later steps work (clean-up runs).
            Error,
            /// The process "dies": the step (a write: half of it) and every later step fail
            /// without reaching the disk.
            Crash,
        }

        #[derive(Default)]
        struct Plan {
            countdown: Option<usize>,
            mode: Option<Mode>,
            crashed: bool,
            steps: Vec<String>,
        }

        thread_local! {
            static PLAN: RefCell<Plan> = RefCell::new(Plan::default());
        }

        /// Fail the `n`-th step (0-based) from now on this thread, in `mode`.
        pub fn arm(n: usize, mode: Mode) {
            PLAN.with(|p| *p.borrow_mut() = Plan { countdown: Some(n), mode: Some(mode), ..Plan::default() });
        }

        /// Stop injecting; returns the steps seen since [`arm`] or [`count`], and whether a
        /// crash was simulated.
        pub fn disarm() -> (Vec<String>, bool) {
            PLAN.with(|p| {
                let p = std::mem::take(&mut *p.borrow_mut());
                (p.steps, p.crashed)
            })
        }

        /// Record steps without failing any.
        pub fn count() {
            PLAN.with(|p| *p.borrow_mut() = Plan::default());
        }

        fn injected() -> std::io::Error {
            std::io::Error::other("injected failure")
        }

        pub(crate) fn hit(step: &str, path: &Path) -> std::io::Result<()> {
            PLAN.with(|p| {
                let mut p = p.borrow_mut();
                if p.crashed {
                    return Err(injected());
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                p.steps.push(format!("{step} {name}"));
                match p.countdown {
                    Some(0) => {
                        p.countdown = None;
                        if p.mode == Some(Mode::Crash) {
                            p.crashed = true;
                        }
                        Err(injected())
                    }
                    Some(n) => {
                        p.countdown = Some(n - 1);
                        Ok(())
                    }
                    None => Ok(()),
                }
            })
        }

        /// One step; an injected crash writes half of `bytes` first (a torn write).
        pub(crate) fn write(f: &mut File, bytes: &[u8]) -> std::io::Result<()> {
            let crash = PLAN.with(|p| {
                let p = p.borrow();
                !p.crashed && p.countdown == Some(0) && p.mode == Some(Mode::Crash)
            });
            if crash {
                f.write_all(&bytes[..bytes.len() / 2])?;
            }
            hit("write", Path::new(""))?;
            f.write_all(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failpoint::{self, Mode};
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        assert_eq!(names(dir.path()), vec!["a.bin"]);
        let q = dir.path().join("b.bin");
        copy_atomically(&p, &q).unwrap();
        assert_eq!(std::fs::read(&q).unwrap(), b"two!");
    }

    #[test]
    fn rename_onto_a_directory_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let err = write_atomically(&target, b"data").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("taken"), "{err}");
        assert_eq!(names(dir.path()), vec!["taken"]);
    }

    #[test]
    fn missing_directory_and_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomically(&dir.path().join("no/such/dir/f"), b"x").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(matches!(write_atomically(Path::new("/"), b"x"), Err(Error::InvalidArgument(_))));
    }

    /// An injected error at every step leaves the destination as it was and no temporary file.
    #[test]
    fn every_failing_step_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomically(&p, b"old").unwrap();
        failpoint::count();
        write_atomically(&p, b"new").unwrap();
        let (steps, _) = failpoint::disarm();
        assert_eq!(steps.len(), 5, "{steps:?}"); // create, write, sync, rename, sync_dir
        for n in 0..steps.len() {
            write_atomically(&p, b"old").unwrap();
            failpoint::arm(n, Mode::Error);
            let r = write_atomically(&p, b"new");
            failpoint::disarm();
            let content = std::fs::read(&p).unwrap();
            if n < 4 {
                assert!(r.is_err(), "step {n}");
                assert_eq!(content, b"old", "step {n}");
            } else {
                // The directory sync failed after the rename: reported, the file is the new one.
                assert!(r.is_err());
                assert_eq!(content, b"new");
            }
            assert_eq!(names(dir.path()), vec!["f"], "step {n}");
        }
    }

    /// A simulated crash at every step leaves the old or the new file (and maybe a temporary
    /// file, which `temp_target` recognises).
    #[test]
    fn crash_at_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for n in 0..5 {
            write_atomically(&p, b"old").unwrap();
            failpoint::arm(n, Mode::Crash);
            assert!(write_atomically(&p, b"new-content").is_err());
            let (_, crashed) = failpoint::disarm();
            assert!(crashed);
            let content = std::fs::read(&p).unwrap();
            assert!(content == b"old" || content == b"new-content", "step {n}: {content:?}");
            for name in names(dir.path()) {
                if name != "f" {
                    assert_eq!(temp_target(&name), Some("f"), "{name}");
                    std::fs::remove_file(dir.path().join(name)).unwrap();
                }
            }
        }
    }

    /// `create_fill_check` runs the check on the filled file: its value comes back with the
    /// fill's; a failing check (or a failing fill, or sync) leaves no file at all.
    #[test]
    fn create_fill_check_checks_the_filled_file_and_cleans_up_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let fill = |f: &mut File, _: &Path| -> Result<usize> {
            f.write_all(b"content").map_err(|e| Error::io("w", e))?;
            Ok(7)
        };
        let (n, read) = create_fill_check(&p, fill, |tmp, &n| {
            assert_ne!(tmp, p.as_path());
            Ok(std::fs::read(tmp).unwrap()[..n].to_vec())
        })
        .unwrap();
        assert_eq!((n, read.as_slice()), (7, &b"content"[..]));
        assert_eq!(std::fs::read(&p).unwrap(), b"content");
        assert_eq!(names(dir.path()), vec!["f"]);
        let q = dir.path().join("g");
        let r = create_fill_check(&q, fill, |_, _| -> Result<()> { Err(Error::Corrupt("bad file".into())) });
        assert!(matches!(r, Err(Error::Corrupt(m)) if m == "bad file"));
        assert_eq!(names(dir.path()), vec!["f"]);
        // An injected error at the sync: the check's value is dropped, nothing is left.
        failpoint::count();
        create_fill_check(&q, fill, |_, _| Ok(())).unwrap();
        let (steps, _) = failpoint::disarm();
        std::fs::remove_file(&q).unwrap();
        let sync = steps.iter().position(|s| s.starts_with("sync")).unwrap();
        failpoint::arm(sync, Mode::Error);
        let r = create_fill_check(&q, fill, |_, _| Ok(()));
        failpoint::disarm();
        assert!(r.is_err());
        assert_eq!(names(dir.path()), vec!["f"]);
    }

    #[test]
    fn temp_names() {
        let t = temp_path(Path::new("/x/seg-000001.sdx")).unwrap();
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_target(name), Some("seg-000001.sdx"));
        for not in ["seg-1.sdx", ".seg.tmp-", ".a.tmp-1", ".a.tmp-x-1", "..tmp-1-2", ".a.tmp-1-2x"] {
            assert_eq!(temp_target(not), None, "{not}");
        }
    }
}
