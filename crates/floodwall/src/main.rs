//! The `floodwall` command: a thin front end over the library crates.
#![forbid(unsafe_code)]

mod cli;
mod docs;

use std::io;

fn main() {
    // `println!` panics when stdout is gone (`floodwall bench … | head`): that is the end of
    // the output, not a failure.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && stdout_closed() {
            std::process::exit(0);
        }
        default_hook(info)
    }));
    if let Err(error) = cli::run() {
        // A reader that stopped reading (`| head`) ends the command quietly and successfully,
        // as it does standard Unix tools.
        if broken_pipe(&error) && stdout_closed() {
            std::process::exit(0);
        }
        eprintln!("floodwall: {error:#}");
        std::process::exit(1);
    }
}

/// Whether the error is a write to a closed pipe.
fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                e.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Whether nobody reads standard output any more (a pipe whose reader exited, a closed socket).
fn stdout_closed() -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdout = io::stdout();
    // No events asked for: POLLERR and POLLHUP are reported regardless.
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    // A zero timeout never blocks.
    let ready = poll(&mut fds, Some(&Timespec::default())).unwrap_or(0);
    ready > 0 && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}
