//! The embedded store of active mitigations: the planner's snapshot as one JSON file, replaced
//! atomically (write, fsync, rename, fsync the directory) before any change reaches the
//! network. A crash at any moment leaves either the old or the new snapshot, never half of one;
//! the next start resumes from it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use floodwall_mitigate::Snapshot;

pub struct Store {
    path: PathBuf,
    /// What was last written: an attack update that changes nothing costs no fsync.
    last: Option<String>,
}

impl Store {
    /// Opens (creating the directory if needed) and checks it can be written now, not at the
    /// first attack.
    pub fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the state directory {}: choose a writable one with `[state] dir = ...`",
                dir.display()
            )
        })?;
        let store = Store {
            path: dir.join("mitigations.json"),
            last: None,
        };
        let probe = dir.join(".write-test");
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "the state directory {} is not writable: fix its permissions or choose another with `[state] dir = ...`",
                    dir.display()
                )
            })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last snapshot saved, if any. Anything else at its path — not a regular file (a FIFO
    /// would block start-up), unreadable, not UTF-8, not a snapshot — is moved aside (kept for
    /// inspection) and reported: starting without it is better than not starting during an
    /// attack.
    pub fn load(&self) -> Result<Option<Snapshot>, (Snapshot, String)> {
        let aside = || self.path.with_extension("json.corrupt");
        let refuse = |why: String| {
            let said = crate::state_file::move_aside(&self.path, &aside(), &why);
            Err((
                Snapshot::default(),
                format!("{said}; starting with no mitigations"),
            ))
        };
        let bytes = match crate::state_file::read(&self.path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => return refuse(e.to_string()),
        };
        match serde_json::from_slice(&bytes) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(e) => refuse(format!(
                "{} is not a mitigation snapshot ({e})",
                self.path.display()
            )),
        }
    }

    /// Writes the snapshot unless it is what was last written.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<()> {
        let mut text = serde_json::to_string_pretty(snapshot)?;
        text.push('\n');
        if self.last.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            // Whatever is at the temporary path (a stale file, a FIFO that would block an
            // open for writing) is replaced, never opened.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("cannot save mitigations to {}", self.path.display()))?;
        self.last = Some(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_mitigate::plan::Held;
    use floodwall_mitigate::{Mitigation, Rule};
    use std::os::unix::fs::FileTypeExt as _;

    #[test]
    fn snapshots_survive_a_reopen_and_garbage_is_moved_aside() {
        let dir = std::env::temp_dir().join(format!("floodwall-store-{}", std::process::id()));
        let mut store = Store::open(&dir).unwrap();
        assert!(store.load().unwrap().is_none());
        let snapshot = Snapshot {
            held: vec![Held {
                mitigation: Mitigation {
                    id: "blackhole:203.0.113.7/32".into(),
                    attack_id: Some("a".into()),
                    hostgroup: "default".into(),
                    rule: Rule::Blackhole {
                        prefix: "203.0.113.7/32".parse().unwrap(),
                        next_hop: "192.0.2.1".parse().unwrap(),
                        communities: vec![],
                    },
                    coverage: None,
                    collateral: None,
                    since: 1,
                    dry_run: false,
                },
                attack_active: true,
                withdraw_at: None,
                unconfirmed: false,
                manual: false,
                derived_from_samples: 0,
            }],
            announcements: vec![],
        };
        store.save(&snapshot).unwrap();
        assert_eq!(
            Store::open(&dir).unwrap().load().unwrap(),
            Some(snapshot.clone())
        );
        // The same snapshot again is not rewritten.
        fs::remove_file(store.path()).unwrap();
        store.save(&snapshot).unwrap();
        assert!(!store.path().exists());
        fs::write(store.path(), b"{not json").unwrap();
        let (empty, why) = store.load().unwrap_err();
        assert!(empty.held.is_empty());
        assert!(why.contains("moved to"), "{why}");
        assert!(dir.join("mitigations.json.corrupt").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO at the snapshot's path is refused at once (reading it would wait for a writer
    /// forever) and moved aside; so is a snapshot that is not UTF-8.
    #[test]
    fn a_fifo_or_a_non_utf8_snapshot_is_moved_aside_without_blocking() {
        let dir = std::env::temp_dir().join(format!("floodwall-store-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let mkfifo = |path: &std::path::Path| {
            let mode = rustix::fs::Mode::from_raw_mode(0o600);
            rustix::fs::mkfifoat(rustix::fs::CWD, path, mode).unwrap();
        };
        mkfifo(store.path());
        let (tx, rx) = std::sync::mpsc::channel();
        let loading = Store::open(&dir).unwrap();
        std::thread::spawn(move || tx.send(loading.load()).unwrap());
        let (empty, why) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("loading a FIFO snapshot blocked")
            .unwrap_err();
        assert!(empty.held.is_empty());
        assert!(
            why.contains("is a FIFO, not a regular file") && why.contains("moved to"),
            "{why}"
        );
        let aside = dir.join("mitigations.json.corrupt");
        assert!(fs::symlink_metadata(&aside).unwrap().file_type().is_fifo());
        assert!(!store.path().exists());

        fs::write(store.path(), b"{\"held\": [\xff\xfe]}").unwrap();
        let (_, why) = store.load().unwrap_err();
        assert!(
            why.contains("is not a mitigation snapshot") && why.contains("moved to"),
            "{why}"
        );
        assert!(!store.path().exists());
        assert_eq!(fs::read(&aside).unwrap(), b"{\"held\": [\xff\xfe]}");

        // A FIFO at the temporary path does not block a save either.
        mkfifo(&store.path().with_extension("json.tmp"));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut saving = Store::open(&dir).unwrap();
        std::thread::spawn(move || tx.send(saving.save(&Snapshot::default()).is_ok()).unwrap());
        assert!(rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("saving past a FIFO blocked"));
        assert!(store.load().unwrap().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }
}
