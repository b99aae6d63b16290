//! C2 feeds in the daemon: `[hunt] c2_feeds` read (files) or fetched (URLs, only when the
//! operator lists one), re-read when they change, merged into one [`C2List`], handed out as
//! `Arc`s with a generation number, and the RPZ zone written from its domains.
//!
//! One thread (`c2-feeds`) polls every [`POLL`]: a file is re-read when its mtime or size
//! changes, a URL fetched every `c2_refresh_seconds`. A feed that cannot be read or parsed keeps
//! its previous list and is logged once per distinct error, so a half-saved edit or an
//! unreachable server never empties the list (nor withdraws its null routes). Readers poll
//! [`FeedHandle::current`]: one uncontended lock and an `Arc` clone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use floodwall_hunt::feed::{self, C2List, ParsedFeed};
use floodwall_hunt::HuntConfig;

use crate::logging::log;

/// How often files are looked at.
pub const POLL: Duration = Duration::from_secs(5);

/// The current list and its generation, shared with whoever reads it.
#[derive(Clone, Default)]
pub struct FeedHandle {
    inner: Arc<Mutex<(u64, Arc<C2List>)>>,
}

impl FeedHandle {
    /// The list and its generation (0: nothing loaded yet; it grows by one per change).
    pub fn current(&self) -> (u64, Arc<C2List>) {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0, guard.1.clone())
    }

    fn publish(&self, list: C2List) -> u64 {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        guard.1 = Arc::new(list);
        guard.0
    }
}

/// Where one feed comes from.
enum Location {
    File(PathBuf),
    /// Fetched to `cache` (in the state directory), read from there.
    Url {
        url: String,
        cache: PathBuf,
    },
}

/// One feed and what was last read from it.
struct Feed {
    name: String,
    location: Location,
    /// Files: (mtime, size) last read. URLs: unused.
    stamp: Option<(SystemTime, u64)>,
    next_fetch: Option<Instant>,
    parsed: Option<ParsedFeed>,
    /// The last error logged, so a broken feed is logged once, not every poll.
    last_error: Option<String>,
}

/// The running watcher: a handle on it. Every `start` with the same state directory and C2
/// settings shares one thread (the hunt thread matches traffic and the mitigators announce
/// routes from the same list, and the zone has one writer); it stops with its last handle.
pub struct FeedWatcher {
    running: Arc<Running>,
}

struct Running {
    handle: FeedHandle,
    stop: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// The watchers running, by what they watch.
static RUNNING: Mutex<Vec<(String, std::sync::Weak<Running>)>> = Mutex::new(Vec::new());

impl FeedWatcher {
    /// Loads the feeds once (so the first list is there when this returns), writes the RPZ zone
    /// if configured, and goes on watching on its own thread. A feed missing or broken at start
    /// is logged and watched for; only an unusable configuration is an error. A watcher already
    /// running for the same state directory and settings is shared, not started twice.
    pub fn start(config: &HuntConfig, state_dir: &Path) -> Result<FeedWatcher> {
        let key = format!(
            "{}|{:?}|{:?}|{}|{}",
            state_dir.display(),
            config.c2_feeds,
            config.rpz_file,
            config.rpz_zone,
            config.c2_refresh_seconds
        );
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = running
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(FeedWatcher { running: shared });
        }
        let mut state = Watching::new(config, state_dir)?;
        state.poll(true);
        let handle = state.handle.clone();
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("c2-feeds".into())
            .spawn(move || state.run(stop))?;
        let shared = Arc::new(Running {
            handle,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        });
        running.push((key, Arc::downgrade(&shared)));
        Ok(FeedWatcher { running: shared })
    }

    /// The current list and its generation.
    pub fn current(&self) -> (u64, Arc<C2List>) {
        self.running.handle.current()
    }

    /// A cheap handle another thread can poll.
    pub fn handle(&self) -> FeedHandle {
        self.running.handle.clone()
    }

    /// Lets go of the watcher; the last handle stops the thread (a fetch in progress finishes
    /// first, at most its timeout).
    pub fn stop(self) {
        drop(self);
    }
}

/// A file name for a URL's cached copy: readable, and unique by a hash of the whole URL.
fn cache_name(url: &str) -> String {
    use std::hash::Hasher as _;
    let mut hasher = fnv();
    hasher.write(url.as_bytes());
    let tail: String = url
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("feed")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(40)
        .collect();
    format!("{:016x}-{tail}", hasher.finish())
}

/// A hasher that is the same in every process (the cache must be found after a restart).
fn fnv() -> impl std::hash::Hasher {
    // FNV-1a: tiny, stable across builds and runs.
    struct Fnv(u64);
    impl std::hash::Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Fnv(0xcbf2_9ce4_8422_2325)
}

/// What a list holds, to tell a change: its (address, port) pairs and domain names.
type ListKey = (Vec<(ipnet::IpNet, Option<u16>)>, Vec<String>);

/// The watcher thread's state.
struct Watching {
    feeds: Vec<Feed>,
    handle: FeedHandle,
    rpz_file: Option<PathBuf>,
    zone: String,
    refresh: Duration,
    cache_dir: PathBuf,
    agent: ureq::Agent,
    /// What was published last: (addresses as (net, port), domain names), to publish only
    /// changes.
    published: Option<ListKey>,
    /// The domains the zone file holds, once written.
    zone_written: Option<Vec<String>>,
    serial: u32,
}

impl Watching {
    fn new(config: &HuntConfig, state_dir: &Path) -> Result<Watching> {
        config.validate_c2().map_err(anyhow::Error::msg)?;
        let zone = floodwall_hunt::rpz::zone_name(&config.rpz_zone)?;
        let cache_dir = state_dir.join("c2-feeds");
        let mut feeds = Vec::new();
        for location in &config.c2_feeds {
            let location = location.trim();
            let feed = if location.starts_with("http://") || location.starts_with("https://") {
                Feed {
                    name: location.to_string(),
                    location: Location::Url {
                        url: location.to_string(),
                        cache: cache_dir.join(cache_name(location)),
                    },
                    stamp: None,
                    next_fetch: None,
                    parsed: None,
                    last_error: None,
                }
            } else {
                let path = PathBuf::from(location);
                Feed {
                    name: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| location.to_string()),
                    location: Location::File(path),
                    stamp: None,
                    next_fetch: None,
                    parsed: None,
                    last_error: None,
                }
            };
            feeds.push(feed);
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("floodwall/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Watching {
            feeds,
            handle: FeedHandle::default(),
            rpz_file: config.rpz_file.clone(),
            zone,
            refresh: Duration::from_secs(config.c2_refresh_seconds.max(60)),
            cache_dir,
            agent,
            published: None,
            zone_written: None,
            serial: 0,
        })
    }

    fn run(mut self, stop: Receiver<()>) {
        // A stop message or the handle dropped ends it.
        while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(POLL) {
            self.poll(false);
        }
    }

    /// Re-reads what changed; publishes and writes the zone if the list did.
    fn poll(&mut self, first: bool) {
        let mut changed = first;
        for i in 0..self.feeds.len() {
            changed |= self.refresh_feed(i);
        }
        if !changed {
            return;
        }
        let list = C2List::from_feeds(self.feeds.iter().filter_map(|f| f.parsed.clone()).collect());
        let key = (
            list.addresses()
                .map(|e| (e.net, e.port))
                .collect::<Vec<_>>(),
            list.domains().map(|d| d.name.clone()).collect::<Vec<_>>(),
        );
        if self.published.as_ref() == Some(&key) {
            return;
        }
        let domains = key.1.clone();
        let addresses = key.0.len();
        let rpz = self.write_zone(&list, &domains);
        self.published = Some(key);
        let generation = self.handle.publish(list);
        log(format!(
            "C2 list {generation}: {addresses} addresses, {} domains from {} feeds{}",
            domains.len(),
            self.feeds.len(),
            rpz.map(|r| format!("; {r}")).unwrap_or_default()
        ));
    }

    /// Reads feed `i` again if it changed. True when its parsed content may have.
    fn refresh_feed(&mut self, i: usize) -> bool {
        let feed = &mut self.feeds[i];
        let text = match &feed.location {
            Location::File(path) => {
                let stamp = match std::fs::metadata(path) {
                    Ok(m) => (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
                    Err(e) => {
                        let why = format!("cannot read C2 feed {}: {e}", path.display());
                        report(feed, why);
                        return false;
                    }
                };
                if feed.stamp == Some(stamp) {
                    return false;
                }
                feed.stamp = Some(stamp);
                read_feed(path)
            }
            Location::Url { url, cache } => {
                let now = Instant::now();
                if feed.next_fetch.is_some_and(|next| now < next) {
                    return false;
                }
                feed.next_fetch = Some(now + self.refresh);
                // At start, a fresh enough cached copy spares the server (and works offline).
                let cached_fresh = feed.parsed.is_none()
                    && std::fs::metadata(cache)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age < self.refresh);
                if cached_fresh {
                    read_feed(cache)
                } else {
                    match fetch(&self.agent, url, cache, &self.cache_dir) {
                        Ok(text) => Ok(text),
                        Err(e) => {
                            let why = format!("cannot fetch C2 feed {url}: {e:#}");
                            // Offline at start: the last copy fetched is better than nothing.
                            if feed.parsed.is_none() {
                                if let Ok(text) = read_feed(cache) {
                                    report(feed, format!("{why}; using the copy fetched before"));
                                    return parse_into(feed, &text);
                                }
                            }
                            report(feed, format!("{why}; keeping the list as it was"));
                            return false;
                        }
                    }
                }
            }
        };
        match text {
            Ok(text) => parse_into(feed, &text),
            Err(e) => {
                report(feed, format!("{e:#}; keeping the list as it was"));
                false
            }
        }
    }

    /// Writes the zone if its domains changed. Returns what it did, for the log line.
    fn write_zone(&mut self, list: &C2List, domains: &[String]) -> Option<String> {
        let path = self.rpz_file.clone()?;
        if self.zone_written.as_deref() == Some(domains) {
            return None;
        }
        // Time-based, and always counting up, so that secondaries see each change.
        let now = crate::clock::unix_ms() / 1000;
        self.serial = (now as u32).max(self.serial.wrapping_add(1));
        let rpz = match floodwall_hunt::rpz::render(&self.zone, list.domains(), self.serial) {
            Ok(rpz) => rpz,
            Err(e) => return Some(format!("error: RPZ zone not written: {e}")),
        };
        match write_atomically(&path, rpz.text.as_bytes()) {
            Ok(()) => {
                self.zone_written = Some(domains.to_vec());
                Some(format!(
                    "RPZ zone {} written to {} ({} domains, serial {}{})",
                    self.zone,
                    path.display(),
                    rpz.listed,
                    self.serial,
                    if rpz.rejected > 0 {
                        format!(", {} names refused", rpz.rejected)
                    } else {
                        String::new()
                    }
                ))
            }
            // Tried again with the next change; the resolver keeps the previous zone.
            Err(e) => Some(format!(
                "error: cannot write the RPZ zone {}: {e:#}",
                path.display()
            )),
        }
    }
}

/// Logs a feed's error once (until it changes or the feed reads well again).
fn report(feed: &mut Feed, why: String) {
    if feed.last_error.as_deref() != Some(why.as_str()) {
        log(format!("error: {why}"));
        feed.last_error = Some(why);
    }
}

/// Parses the text into `feed`. True if the feed's list was replaced.
fn parse_into(feed: &mut Feed, text: &str) -> bool {
    match C2List::parse(&feed.name, text) {
        Ok(parsed) => {
            feed.last_error = None;
            let examples = if parsed.examples.is_empty() {
                String::new()
            } else {
                format!(" (e.g. {})", parsed.examples.join(", "))
            };
            log(format!(
                "C2 feed {} ({}): {} addresses, {} domains, {} lines rejected{examples}, {} IOCs skipped (not C2 endpoints)",
                feed.name,
                parsed.format,
                parsed.entries.len(),
                parsed.domains.len(),
                parsed.rejected,
                parsed.skipped,
            ));
            feed.parsed = Some(parsed);
            true
        }
        Err(e) => {
            let why = format!(
                "C2 feed {} is unusable: {e}; keeping the list as it was",
                feed.name
            );
            report(feed, why);
            false
        }
    }
}

/// A feed file's text, bounded, never blocking on a FIFO.
fn read_feed(path: &Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read C2 feed {}", path.display()))?
        .len();
    if size > feed::MAX_BYTES as u64 {
        anyhow::bail!(
            "C2 feed {} is {size} bytes, over the limit of {}",
            path.display(),
            feed::MAX_BYTES
        );
    }
    let bytes = crate::state_file::read(path)?
        .with_context(|| format!("C2 feed {} is gone", path.display()))?;
    // A stray non-UTF-8 byte costs one line, not the feed.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Fetches `url`, keeps the copy in `cache` (atomically) and returns its text.
fn fetch(agent: &ureq::Agent, url: &str, cache: &Path, dir: &Path) -> Result<String> {
    let mut response = agent.get(url).call()?;
    let text = response
        .body_mut()
        .with_config()
        .limit(feed::MAX_BYTES as u64)
        .read_to_string()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomically(cache, text.as_bytes())?;
    Ok(text)
}

/// Temp file in the same directory, fsync, rename over, fsync the directory: readers (a
/// resolver reloading the zone) see the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("floodwall-feeds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Sets a file's content and makes its mtime differ from the last (coarse clocks).
    fn write(path: &Path, text: &str, second: u64) {
        std::fs::write(path, text).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + second);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn edits_are_followed_a_broken_edit_keeps_the_list_and_the_zone_is_atomic() {
        let dir = temp_dir("edits");
        let feed = dir.join("c2.txt");
        let zone = dir.join("c2.rpz");
        write(&feed, "198.51.100.7\nevil.example\n", 1);
        let config = HuntConfig {
            c2_feeds: vec![feed.display().to_string()],
            rpz_file: Some(zone.clone()),
            ..HuntConfig::default()
        };
        let watcher = FeedWatcher::start(&config, &dir).unwrap();
        // A second start with the same settings (the hunt thread beside the mitigators) shares
        // the thread; one with other settings does not.
        let again = FeedWatcher::start(&config, &dir).unwrap();
        assert!(Arc::ptr_eq(&watcher.running, &again.running));
        let other = HuntConfig {
            rpz_file: None,
            ..config.clone()
        };
        let other = FeedWatcher::start(&other, &dir).unwrap();
        assert!(!Arc::ptr_eq(&watcher.running, &other.running));
        other.stop();
        again.stop();
        let (generation, list) = watcher.current();
        assert_eq!(generation, 1);
        assert_eq!(list.len(), 2);
        let text = std::fs::read_to_string(&zone).unwrap();
        assert!(
            text.contains("\nevil.example CNAME .\n*.evil.example CNAME .\n"),
            "{text}"
        );
        watcher.stop();

        // The same steps without the thread, to control the timing.
        let mut state = Watching::new(&config, &dir).unwrap();
        state.poll(true);
        assert_eq!(state.handle.current().0, 1);
        // Unchanged: no new generation.
        state.poll(false);
        assert_eq!(state.handle.current().0, 1);
        // An edit: followed.
        write(&feed, "198.51.100.7\n198.51.100.8\nother.example\n", 2);
        state.poll(false);
        let (generation, list) = state.handle.current();
        assert_eq!((generation, list.addresses().count()), (2, 2));
        let text = std::fs::read_to_string(&zone).unwrap();
        assert!(
            text.contains("other.example") && !text.contains("evil.example"),
            "{text}"
        );
        // A broken edit (JSON cut short): the list stays.
        write(&feed, "[\"198.51.100.9\"", 3);
        state.poll(false);
        assert_eq!(state.handle.current().0, 2);
        assert!(state.feeds[0].last_error.is_some());
        // The feed gone: the list stays too.
        std::fs::remove_file(&feed).unwrap();
        state.poll(false);
        assert_eq!(state.handle.current().1.addresses().count(), 2);
        // No temp file is left beside the zone.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_names_are_stable_and_distinct() {
        let a = cache_name("https://feodotracker.abuse.ch/downloads/ipblocklist.csv");
        assert_eq!(
            a,
            cache_name("https://feodotracker.abuse.ch/downloads/ipblocklist.csv")
        );
        assert!(a.ends_with("-ipblocklist.csv"), "{a}");
        assert_ne!(
            a,
            cache_name("https://mirror.example/downloads/ipblocklist.csv")
        );
        assert!(!cache_name("http://x/../../etc/").contains('/'));
    }
}
