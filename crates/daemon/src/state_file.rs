//! Reading the files of `[state] dir` at start-up without ever blocking on them.
//!
//! A FIFO (or a device) where a snapshot should be would block a plain `read` forever and the
//! daemon would hang before it listens, silently. Files are opened non-blocking and refused
//! unless regular; the callers move what they refuse aside and start without it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Why a state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0} is {1}, not a regular file")]
    NotRegular(PathBuf, &'static str),
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, io::Error),
}

/// The bytes of the regular file at `path`; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, ReadError> {
    let io = |e| ReadError::Io(path.to_path_buf(), e);
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let kind = file.metadata().map_err(io)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "something else"
        };
        return Err(ReadError::NotRegular(path.to_path_buf(), what));
    }
    let mut bytes = Vec::new();
    let mut file: File = file;
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(bytes))
}

/// Moves an unusable state file to `aside` (kept for inspection) and says what happened, for
/// the log line that tells the operator the daemon starts without it.
pub fn move_aside(path: &Path, aside: &Path, why: &str) -> String {
    match std::fs::rename(path, aside) {
        Ok(()) => format!("{why}; moved to {}", aside.display()),
        Err(e) => format!(
            "{why}; could not move it to {} ({e}): remove it",
            aside.display()
        ),
    }
}
