//! The local terminal: raw mode for `-it` sessions, restored however the
//! session ends (its guard's drop runs on return, on error and on panic),
//! and the window's size.

use std::io;
use std::os::fd::AsFd;

use rustix::termios::{self, OptionalActions, Termios};

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: impl AsFd) -> bool {
    termios::isatty(fd)
}

/// The terminal's size as (columns, rows), from stdout or else stdin.
pub fn size() -> Option<(u16, u16)> {
    let size = termios::tcgetwinsize(io::stdout())
        .or_else(|_| termios::tcgetwinsize(io::stdin()))
        .ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// Stdin's terminal in raw mode until this is dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode (keys go through as bytes: Ctrl-C
    /// is 0x03 for the remote terminal, not a signal here).
    pub fn enter() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Drain (not flush): output already written is still shown.
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Drain, &self.saved);
    }
}
