//! API tokens: who may read and who may change things.
//!
//! `[http] tokens_file` lists tokens by their SHA-256, never the tokens themselves, one per line:
//!
//! ```text
//! # name     scope   sha256 of the token
//! grafana    read    sha256:4f1c…
//! noc        write   sha256:9a0b…
//! ```
//!
//! `floodwall token` makes a token and its line. A `read` token reads everything but the
//! state-changing calls; a `write` token may also announce and withdraw. Without a tokens file
//! reads are open to whoever reaches the listener and nothing can be changed. The file is read
//! again when it changes; an edit that does not parse keeps the tokens that were in force (and
//! is logged), so a typo does not lock the operators out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::logging::log;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    fn parse(word: &str) -> Option<Scope> {
        match word {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }
}

/// One line of the tokens file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    hash: [u8; 32],
}

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} line {line}: {problem}; a line is `NAME read|write sha256:HEX` (`floodwall token --name NAME --scope read` makes one)")]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// Parses a tokens file's text.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Token>, TokensError> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let problem = |problem: String| TokensError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, scope, hash] = words[..] else {
            return Err(problem(format!("{} words, not 3", words.len())));
        };
        let scope = Scope::parse(scope)
            .ok_or_else(|| problem(format!("scope `{scope}` is neither `read` nor `write`")))?;
        let Some(hex) = hash.strip_prefix("sha256:") else {
            return Err(problem(
                "the third word must be the token's SHA-256 as `sha256:HEX` (tokens are not kept in clear)".into(),
            ));
        };
        let hash = decode_hex(hex)
            .ok_or_else(|| problem("the SHA-256 must be 64 hexadecimal digits".into()))?;
        if tokens.iter().any(|t: &Token| t.name == name) {
            return Err(problem(format!("the name `{name}` is used twice")));
        }
        tokens.push(Token {
            name: name.to_string(),
            scope,
            hash,
        });
    }
    Ok(tokens)
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The SHA-256 of a token, as the file keeps it.
pub fn hash_line(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("sha256:{hex}")
}

/// A new random token: `fw_` and 32 random bytes in hex.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let mut token = String::from("fw_");
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    Ok(token)
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Allowed; the token's name when there was one.
    Granted(Option<String>),
    /// No token or an unknown one: 401.
    Unauthenticated,
    /// A token without the scope needed, or no tokens file for a change: 403.
    Forbidden(&'static str),
}

/// How often the tokens file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

/// The tokens in force, re-read when the file changes.
pub struct Tokens {
    path: Option<PathBuf>,
    state: Mutex<Loaded>,
}

struct Loaded {
    tokens: Vec<Token>,
    modified: Option<SystemTime>,
    checked: Instant,
}

impl Tokens {
    /// Reads the file (if any): an unreadable or malformed file is an error at start.
    pub fn load(path: Option<&Path>) -> Result<Tokens, TokensError> {
        let (tokens, modified) = match path {
            Some(path) => read(path)?,
            None => (Vec::new(), None),
        };
        Ok(Tokens {
            path: path.map(Path::to_path_buf),
            state: Mutex::new(Loaded {
                tokens,
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// Whether reads need a token.
    pub fn configured(&self) -> bool {
        self.path.is_some()
    }

    /// Checks an `Authorization` header's value for a call that needs `needed`.
    pub fn check(&self, authorization: Option<&str>, needed: Scope) -> Access {
        let Some(path) = &self.path else {
            return match needed {
                Scope::Read => Access::Granted(None),
                Scope::Write => Access::Forbidden(
                    "state-changing calls need a read-write token: set [http] tokens_file",
                ),
            };
        };
        let presented = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(presented) = presented else {
            return Access::Unauthenticated;
        };
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified != state.modified {
                match read(path) {
                    Ok((tokens, modified)) => {
                        log(format!(
                            "http: {} re-read, {} tokens",
                            path.display(),
                            tokens.len()
                        ));
                        state.tokens = tokens;
                        state.modified = modified;
                    }
                    Err(e) => {
                        // Logged once per change: the old tokens stay in force.
                        state.modified = modified;
                        log(format!(
                            "error: http: {e}; the tokens read before stay in force"
                        ));
                    }
                }
            }
        }
        // Every entry compared in full, without an early exit: no timing tells which one
        // matched or how much of a hash did.
        let mut matched: Option<&Token> = None;
        for token in &state.tokens {
            let differs = token
                .hash
                .iter()
                .zip(hash.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if differs == 0 {
                matched = Some(token);
            }
        }
        match matched {
            None => Access::Unauthenticated,
            Some(token) if token.scope >= needed => Access::Granted(Some(token.name.clone())),
            Some(_) => Access::Forbidden("this token may only read: the call needs a write token"),
        }
    }
}

fn read(path: &Path) -> Result<(Vec<Token>, Option<SystemTime>), TokensError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokensError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((parse(&text, path)?, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens_file(text: &str) -> (tempdir::Dir, Tokens) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("tokens");
        std::fs::write(&path, text).unwrap();
        let tokens = Tokens::load(Some(&path)).unwrap();
        (dir, tokens)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path =
                    std::env::temp_dir().join(format!("floodwall-auth-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn scopes_decide_and_unknown_or_missing_tokens_are_unauthenticated() {
        let read = new_token().unwrap();
        let write = new_token().unwrap();
        let text = format!(
            "# comment\ngrafana read {}\n\nnoc write {}\n",
            hash_line(&read),
            hash_line(&write)
        );
        let (_dir, tokens) = tokens_file(&text);
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(
            tokens.check(Some(&bearer(&read)), Scope::Read),
            Access::Granted(Some("grafana".into()))
        );
        assert!(matches!(
            tokens.check(Some(&bearer(&read)), Scope::Write),
            Access::Forbidden(_)
        ));
        assert_eq!(
            tokens.check(Some(&bearer(&write)), Scope::Write),
            Access::Granted(Some("noc".into()))
        );
        assert_eq!(tokens.check(None, Scope::Read), Access::Unauthenticated);
        assert_eq!(
            tokens.check(Some("Bearer fw_nonsense"), Scope::Read),
            Access::Unauthenticated
        );
        // The hash itself is not a token.
        assert_eq!(
            tokens.check(Some(&bearer(&hash_line(&read))), Scope::Read),
            Access::Unauthenticated
        );
        assert_eq!(
            tokens.check(Some(&read), Scope::Read),
            Access::Unauthenticated
        );
    }

    #[test]
    fn without_a_file_reads_are_open_and_changes_refused() {
        let tokens = Tokens::load(None).unwrap();
        assert_eq!(tokens.check(None, Scope::Read), Access::Granted(None));
        assert!(matches!(
            tokens.check(Some("Bearer anything"), Scope::Write),
            Access::Forbidden(_)
        ));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line_number() {
        let path = Path::new("tokens");
        for (text, needle) in [
            ("noc write fw_0123", "sha256:HEX"),
            ("noc admin sha256:00", "neither `read` nor `write`"),
            ("noc write sha256:0011", "64 hexadecimal digits"),
            ("noc write", "2 words"),
        ] {
            let e = parse(&format!("# x\n{text}\n"), path)
                .unwrap_err()
                .to_string();
            assert!(e.contains("line 2") && e.contains(needle), "{e}");
        }
        let twice = format!("a read {h}\na write {h}\n", h = hash_line("x"));
        assert!(parse(&twice, path)
            .unwrap_err()
            .to_string()
            .contains("used twice"));
    }

    #[test]
    fn an_edit_is_taken_and_a_broken_edit_keeps_the_tokens_in_force() {
        let first = new_token().unwrap();
        let second = new_token().unwrap();
        let (dir, tokens) = tokens_file(&format!("a read {}\n", hash_line(&first)));
        let path = dir.0.join("tokens");
        let bearer = |t: &str| format!("Bearer {t}");
        assert!(matches!(
            tokens.check(Some(&bearer(&first)), Scope::Read),
            Access::Granted(_)
        ));
        let wait_recheck = || {
            tokens.state.lock().unwrap().checked = Instant::now() - RECHECK * 2;
        };
        std::fs::write(&path, format!("b read {}\n", hash_line(&second))).unwrap();
        // Make the change visible even on a coarse-grained file system clock.
        tokens.state.lock().unwrap().modified = None;
        wait_recheck();
        assert_eq!(
            tokens.check(Some(&bearer(&first)), Scope::Read),
            Access::Unauthenticated
        );
        assert!(matches!(
            tokens.check(Some(&bearer(&second)), Scope::Read),
            Access::Granted(_)
        ));
        std::fs::write(&path, "b read oops\n").unwrap();
        tokens.state.lock().unwrap().modified = None;
        wait_recheck();
        assert!(matches!(
            tokens.check(Some(&bearer(&second)), Scope::Read),
            Access::Granted(_)
        ));
    }
}
