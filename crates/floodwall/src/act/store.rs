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

    /// The last snapshot saved, if any. An unreadable one is moved aside (kept for inspection)
    /// and reported: starting without it is better than not starting during an attack.
    pub fn load(&self) -> Result<Option<Snapshot>, (Snapshot, String)> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err((
                    Snapshot::default(),
                    format!("cannot read {}: {e}", self.path.display()),
                ))
            }
        };
        match serde_json::from_str(&text) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(e) => {
                let aside = self.path.with_extension("json.corrupt");
                let _ = fs::rename(&self.path, &aside);
                Err((
                    Snapshot::default(),
                    format!(
                        "{} is not a mitigation snapshot ({e}); moved to {} and starting with none",
                        self.path.display(),
                        aside.display()
                    ),
                ))
            }
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
            let mut file = File::create(&tmp)?;
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
}
