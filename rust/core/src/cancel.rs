//! Cooperative cancellation of long calls: a Ctrl-C pressed while a merge, a build with BP
//! reordering or a calibration runs in the engine stops it within a fraction of a second
//! instead of when it ends (the Python bindings poll for signals while such a call runs on
//! another thread, and cancel its [`Token`]).
//!
//! The token of a call is set for the thread that runs it ([`scope`]); long loops check it at
//! points where stopping leaves nothing half-done: [`check`] on that thread, or a [`Watch`]
//! taken there and handed to the parallel work (rayon's worker threads do not see the calling
//! thread's token). A cancelled call returns [`Error::Cancelled`]; whatever it was writing is
//! cleaned up as after any other error (temporary files removed, nothing committed).

use crate::{Error, Result};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cancellation flag shared by the caller and the call it may cancel.
#[derive(Clone, Debug, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Token::default()
    }

    /// Ask the call holding this token to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Token::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// Run `f` with `token` as the current thread's token (the previous one is restored after).
pub fn scope<T>(token: &Token, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Token>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(token.clone())));
    f()
}

/// Make `token` the current thread's token until replaced (`None`: no token): for a thread
/// whose every call should be cancellable by one token, such as a background merge thread
/// (the Python bindings' `CancelToken.install`).
pub fn set_current(token: Option<Token>) {
    CURRENT.with(|c| *c.borrow_mut() = token);
}

/// The current thread's token, to check from other threads (none outside [`scope`]).
#[derive(Clone, Debug, Default)]
pub struct Watch(Option<Token>);

impl Watch {
    /// Whether the call was cancelled (one relaxed load; false without a token).
    #[inline]
    pub fn stopped(&self) -> bool {
        self.0.as_ref().is_some_and(Token::is_cancelled)
    }

    /// Run `f` with this watch's token (if any) as the current thread's: for a helper thread
    /// that does part of a cancellable call and checks with [`check`] or [`watch`] itself.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(t) => scope(t, f),
            None => f(),
        }
    }

    /// `Err(Error::Cancelled)` if the call was cancelled.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.stopped() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The current thread's [`Watch`].
pub fn watch() -> Watch {
    Watch(CURRENT.with(|c| c.borrow().clone()))
}

/// A check for hot loops (the document-at-a-time searches' pivots, of which a query of
/// thousands of terms may take minutes): [`Ticker::stopped`] reads the token once every
/// `every` calls. A search that stops returns what it found so far, which the binding that
/// cancelled it discards (it raises the signal's exception).
pub struct Ticker {
    watch: Watch,
    n: u32,
    every: u32,
}

impl Ticker {
    /// A ticker of the current thread's call for a loop whose steps each cost about `work`
    /// (e.g. the query's terms, for a pivot step that may look at each): the token is read
    /// every `max(1, 4096 / work)` steps (every step of a query of 150,000 terms, whose steps
    /// each re-sort thousands of cursors; every 400 of a query of 10 terms).
    pub fn new(work: usize) -> Self {
        let every = (4096 / work.max(1)).clamp(1, 4096) as u32;
        Ticker { watch: watch(), n: 0, every }
    }

    /// Whether the call was cancelled, looked at every `every` calls.
    #[inline]
    pub fn stopped(&mut self) -> bool {
        self.n += 1;
        if self.n < self.every {
            return false;
        }
        self.n = 0;
        self.watch.stopped()
    }
}

/// `Err(Error::Cancelled)` if the current thread's call was cancelled.
pub fn check() -> Result<()> {
    watch().check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_seen_in_its_scope_only_and_through_a_watch_on_other_threads() {
        assert!(check().is_ok());
        let t = Token::new();
        scope(&t, || {
            let w = watch();
            assert!(check().is_ok());
            t.cancel();
            assert!(matches!(check(), Err(Error::Cancelled)));
            // another thread sees it through the watch, not through its own (empty) scope
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert!(w.stopped());
                    assert!(check().is_ok());
                });
            });
            let inner = Token::new();
            scope(&inner, || assert!(check().is_ok()));
            assert!(check().is_err(), "the outer token is restored");
        });
        assert!(check().is_ok());
    }
}
