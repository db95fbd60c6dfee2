//! The engine's parallel work after `fork()`.
//!
//! Building, verifying and batch searches run on rayon's global pool. A child made by
//! `fork()` inherits that pool's state but none of its worker threads (fork copies only the
//! calling thread), so its first parallel call would wait forever for workers that do not
//! exist: the known rayon-after-fork deadlock (`multiprocessing`'s default start method on
//! Linux forks). HF `tokenizers` handles the same problem by turning its parallelism off in a
//! forked child; here the child gets a pool of its own instead.
//!
//! The bindings call [`note_fork`] in the child right after a fork (Python's
//! `os.register_at_fork(after_in_child=...)`) and run every call into the engine through
//! [`run`]: in the process that built the global pool, `run(f)` is just `f()`; in a forked
//! child it runs `f` inside a pool created in that child (and again in a grandchild), so every
//! `par_iter` below it uses live threads. Explicitly sized pools (`threads=` of batch
//! searches) are cached per process for the same reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

static FORKED: AtomicBool = AtomicBool::new(false);
static CHILD_POOL: PerProcess<Mutex<Option<Arc<rayon::ThreadPool>>>> = PerProcess::new();

/// A value of which each process has its own, made on first use in that process: after a
/// `fork()` the child makes a fresh one and never touches its parent's. For process-wide
/// registries behind a mutex (pools): a thread of the parent may have held the mutex at the
/// fork, a thread the child does not have, and the child would wait on it forever
/// (helper-123: a forked child's `search_batch` hung about once in 1,000 forks while the
/// parent's threads ran batches). The parent's value is leaked in the child, never dropped
/// (its pools' workers do not exist there).
pub struct PerProcess<T> {
    cur: std::sync::atomic::AtomicPtr<(u32, T)>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PerProcess<T> {
    /// Empty until first used.
    pub const fn new() -> Self {
        PerProcess { cur: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// This process's value, made by `make` if it has none yet.
    pub fn get(&'static self, make: impl Fn() -> T) -> &'static T {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let pid = std::process::id();
        loop {
            let p = self.cur.load(Acquire);
            // SAFETY: a non-null pointer was made by Box::into_raw below and is never freed
            // (values are leaked, not replaced in place), so it is valid for 'static.
            if let Some(v) = unsafe { p.as_ref() } {
                if v.0 == pid {
                    return &v.1;
                }
            }
            let new = Box::into_raw(Box::new((pid, make())));
            match self.cur.compare_exchange(p, new, AcqRel, Acquire) {
                // SAFETY: `new` is a live box now owned by `cur`, never freed.
                Ok(_) => return unsafe { &(*new).1 },
                Err(_) => {
                    // another thread of this process installed one first: use that one
                    // SAFETY: `new` was never shared.
                    drop(unsafe { Box::from_raw(new) });
                }
            }
        }
    }
}

/// Record that this process is a `fork()` child of a process that may have started rayon's
/// global pool. Async-signal-safe (one atomic store): call it from an after-fork hook.
pub fn note_fork() {
    FORKED.store(true, Ordering::SeqCst);
}

/// True once [`note_fork`] was called in this process (or an ancestor it was forked from).
pub fn forked() -> bool {
    FORKED.load(Ordering::SeqCst)
}

/// Run `f`, whose parallel work must not use a pool inherited through `fork()`: directly
/// when this process never forked (or when already on a worker of a live pool), else inside
/// a pool of this process.
pub fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if !forked() || rayon::current_thread_index().is_some() {
        return f();
    }
    match child_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// This process's own pool (created on first use after a fork; `None` if no thread could
/// be started, then the work runs on the calling thread's rayon fallback).
fn child_pool() -> Option<Arc<rayon::ThreadPool>> {
    // this process's slot: a nested fork's parent's slot (and pool, whose threads are gone
    // here) is never touched, nor dropped (dropping would signal workers that do not exist)
    let mut slot = CHILD_POOL.get(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = slot.as_ref() {
        return Some(pool.clone());
    }
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().thread_name(|i| format!("sparsedex-{i}")).build().ok()?);
    *slot = Some(pool.clone());
    Some(pool)
}

/// How long [`lock_owned_by`] tries a mutex inherited through `fork()` before giving up.
pub const INHERITED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Lock `m`, a mutex of an object made by process `owner` (its pid). In that process this is
/// a plain lock (a poisoned mutex is taken as is). In a `fork()` child the mutex may have been
/// held by a thread of the parent at the fork, a thread the child does not have, so it would
/// never be released: the child tries for [`INHERITED_LOCK_WAIT`] (a thread of its own holds
/// it for a moment at most) and then gives up with `None` (helper-88: a child's `close()` or
/// `refresh()` on an index handle it inherited hung while a parent thread was committing).
pub fn lock_owned_by<T>(m: &Mutex<T>, owner: u32) -> Option<std::sync::MutexGuard<'_, T>> {
    if std::process::id() == owner {
        return Some(m.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let deadline = std::time::Instant::now() + INHERITED_LOCK_WAIT;
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    #[test]
    fn run_is_transparent_before_a_fork() {
        assert!(!super::forked());
        let s: u64 = super::run(|| (0..10_000u64).into_par_iter().sum());
        assert_eq!(s, 49_995_000);
    }
}
