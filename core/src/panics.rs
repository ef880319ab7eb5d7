//! Catching a panic of another library on hostile input, without its English message.
//!
//! automerge and calamine panic on some malformed input (found by fuzzing, RELIABILITY.md);
//! where such a panic means "these bytes are damaged", the core catches it and returns a
//! Chinese error. The default panic hook would still print the library's English message (and
//! a backtrace) on stderr before that error. [`catch_quietly`] runs code under `catch_unwind`
//! with a flag set for this thread, and a panic hook installed once per process stays silent
//! while the flag is set, handing every other panic to the hook installed before it, so a
//! genuine bug elsewhere still prints. A hook installed after this one (a fuzz harness's)
//! replaces it; that is its owner's choice.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code inside [`catch_quietly`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic (as `Err`, with its payload) without printing it.
pub(crate) fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    install_hook();
    let was = CATCHING.with(|c| c.replace(true));
    let caught = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    caught
}

/// A caught panic's message, for the developer log.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}
