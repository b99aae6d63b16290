//! Bus subscribers that write out what happened: the JSON-lines events file and the notifiers
//! (webhooks, scripts). Each runs on its own bus thread (see [`crate::bus`] for the policy when
//! one is slow or failing).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::act::Notifier;
use crate::bus::{Message, Subscriber, Topic};
use crate::logging::log;

/// The events file: one JSON object per attack record, flushed whenever the queue is empty.
/// A failed write (a full disk) is the bus's to count and log; the next record is written
/// again, and detection and mitigation go on.
pub struct EventsFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventsFile {
    pub fn open(path: &Path) -> Result<EventsFile> {
        let file = OpenOptions::new().create(true).append(true).open(path).with_context(|| {
            format!(
                "cannot open the events file {} for appending: choose a writable path with `[events] file = ...`",
                path.display()
            )
        })?;
        Ok(EventsFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }
}

impl Subscriber for EventsFile {
    fn name(&self) -> &str {
        "events-file"
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::Attack, Topic::Hunt]
    }

    fn handle(&mut self, message: &Message) -> Result<()> {
        let mut line = match message {
            Message::Attack(record) => serde_json::to_vec(record.as_ref())?,
            Message::Hunt(event) => serde_json::to_vec(event.as_ref())?,
            _ => return Ok(()),
        };
        line.push(b'\n');
        self.out
            .write_all(&line)
            .with_context(|| format!("writing the events file {}", self.path.display()))
    }

    fn idle(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing the events file {}", self.path.display()))
    }
}

/// How long a stopping daemon waits for webhooks and scripts to deliver what is queued.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// Webhooks and scripts: each attack record and mitigation notice, as its JSON object.
pub struct Notify {
    notifiers: Vec<Box<dyn Notifier>>,
}

impl Notify {
    pub fn new(notifiers: Vec<Box<dyn Notifier>>) -> Notify {
        Notify { notifiers }
    }
}

impl Subscriber for Notify {
    fn name(&self) -> &str {
        "notify"
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::Attack, Topic::Mitigation, Topic::Hunt]
    }

    fn handle(&mut self, message: &Message) -> Result<()> {
        let notice = match message {
            Message::Attack(record) => serde_json::to_value(record.as_ref())?,
            Message::Mitigation(notice) => serde_json::to_value(notice.as_ref())?,
            Message::Hunt(event) => serde_json::to_value(event.as_ref())?,
            _ => return Ok(()),
        };
        for notifier in &mut self.notifiers {
            notifier.notify(&notice);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        for notifier in &mut self.notifiers {
            if !notifier.close(NOTIFY_GRACE) {
                log(format!(
                    "{}: notices still queued at shutdown were dropped",
                    notifier.name()
                ));
            }
        }
        Ok(())
    }
}
