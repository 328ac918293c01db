//! Writing command output to stdout and messages to stderr without panicking when the reader has
//! gone away.
//!
//! `println!` panics when stdout is a pipe whose reader has exited (`pluvo-sync plan | head`):
//! Rust ignores SIGPIPE, so the write fails with EPIPE, and the panic exits 101 with a
//! backtrace. Unix tools stop writing quietly instead. The commands here print through
//! [`outln!`], [`out!`] and [`errln!`]: once a stream is found closed, later writes to it are
//! dropped, and the command finishes with its own exit code. That code is kept on purpose (not
//! 141, the shell's code for death by SIGPIPE): for `sync` it says how the run went, which a
//! reader that stopped early does not change, and a run must never die half-way because its
//! output was piped into `head`.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout (or stderr) turned out to be closed; nothing more is written to it.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; a closed pipe ends output quietly.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    write_to(&mut io::stdout().lock(), &STDOUT_CLOSED, args);
}

/// Writes to stderr; a closed pipe ends messages quietly.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    write_to(&mut io::stderr().lock(), &STDERR_CLOSED, args);
}

fn write_to(stream: &mut impl Write, closed: &AtomicBool, args: std::fmt::Arguments<'_>) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    // Any failure (EPIPE, a full disk behind a redirect) means the output is not being taken;
    // there is nowhere better to report it, and the command's work stands either way.
    if stream
        .write_fmt(args)
        .and_then(|()| stream.flush())
        .is_err()
    {
        closed.store(true, Ordering::Relaxed);
    }
}

/// `print!` that stops quietly once stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that stops quietly once stdout is closed.
macro_rules! outln {
    () => {
        $crate::cli::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that stops quietly once stderr is closed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose reader has gone: every write fails like a closed pipe.
    struct ClosedPipe {
        attempts: usize,
    }

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.attempts += 1;
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_written_to_once_and_then_left_alone() {
        let closed = AtomicBool::new(false);
        let mut pipe = ClosedPipe { attempts: 0 };
        write_to(&mut pipe, &closed, format_args!("one\n"));
        write_to(&mut pipe, &closed, format_args!("two\n"));
        assert!(closed.load(Ordering::Relaxed));
        assert_eq!(pipe.attempts, 1);
    }
}
