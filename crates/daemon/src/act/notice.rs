//! What webhooks and scripts share: reading a notice (attack event or mitigation change) for
//! its event, target and attack id, a one-line human summary, and the delivery queue — a
//! bounded channel drained by an own thread, so `Notifier::notify` never waits on the network
//! or on a child process; what does not fit is dropped and counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use floodwall_mitigate::Rule;
use serde_json::Value;

use crate::units::human_rate;

/// Notices waiting for delivery per notifier; more are dropped (and counted).
pub const QUEUE: usize = 1024;

/// The event name: `attack_started`, …, `mitigation_announced` (or `_queued`, `_failed`), `mitigation_withdrawn`.
pub fn event(notice: &Value) -> &str {
    notice["event"].as_str().unwrap_or("notice")
}

/// The mitigation a mitigation notice is about.
fn mitigation_rule(notice: &Value) -> Option<Rule> {
    serde_json::from_value(notice["mitigation"]["rule"].clone()).ok()
}

/// The attacked address or prefix (of the attack, or of the mitigation's rule).
pub fn target(notice: &Value) -> String {
    if let Some(target) = notice["target"].as_str() {
        return target.to_string();
    }
    mitigation_rule(notice)
        .map(|rule| rule.target().to_string())
        .unwrap_or_default()
}

/// The attack id (of the attack, or the one the mitigation answers; empty for manual ones).
pub fn attack_id(notice: &Value) -> String {
    notice["attack_id"]
        .as_str()
        .or_else(|| notice["mitigation"]["attack_id"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn describe_mitigation(m: &Value) -> String {
    let rule = serde_json::from_value::<Rule>(m["rule"].clone())
        .map(|r| r.to_string())
        .unwrap_or_else(|_| m["rule"].to_string());
    let mut text = rule;
    if let Some(coverage) = m["coverage"].as_f64() {
        text.push_str(&format!(" (covers {:.0}%)", coverage * 100.0));
    }
    if m["dry_run"].as_bool() == Some(true) {
        text.push_str(" [dry run]");
    }
    // An attack event's mitigations are the plan's decisions: say which were not announced.
    if let Some(status) = m["status"].as_str().filter(|s| *s != "announced") {
        match m["reason"].as_str() {
            Some(reason) => text.push_str(&format!(" [{status}: {reason}]")),
            None => text.push_str(&format!(" [{status}]")),
        }
    }
    text
}

/// One readable line: event, target, vectors, rates, mitigations.
pub fn summary(notice: &Value) -> String {
    let event = event(notice);
    if let Some(m) = notice.get("mitigation").filter(|m| m.is_object()) {
        let mut text = format!("{event}: {} for {}", describe_mitigation(m), target(notice));
        if let Some(id) = m["id"].as_str() {
            text.push_str(&format!(" (mitigation {id})"));
        }
        if let Some(reason) = notice["reason"].as_str() {
            text.push_str(&format!(": {reason}"));
        }
        return text;
    }
    let mut text = format!("{event}: ");
    if let Some(direction) = notice["direction"].as_str() {
        text.push_str(direction);
        text.push(' ');
    }
    let vectors: Vec<&str> = notice["vectors"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if vectors.is_empty() {
        text.push_str("attack");
    } else {
        text.push_str(&vectors.join(", "));
    }
    text.push_str(&format!(" on {}", target(notice)));
    if notice["carpet_bombing"].as_bool() == Some(true) {
        text.push_str(" (carpet bombing)");
    }
    let pps = notice["pps"].as_f64();
    let bps = notice["bps"].as_f64();
    if pps.is_some() || bps.is_some() {
        text.push_str(&format!(
            " at {}, {}",
            human_rate(pps.unwrap_or(0.0), "pps"),
            human_rate(bps.unwrap_or(0.0), "bps")
        ));
    }
    if let (Some(pps), Some(bps)) = (notice["peak_pps"].as_f64(), notice["peak_bps"].as_f64()) {
        text.push_str(&format!(
            " (peak {}, {})",
            human_rate(pps, "pps"),
            human_rate(bps, "bps")
        ));
    }
    let id = attack_id(notice);
    if !id.is_empty() {
        text.push_str(&format!(" [attack {id}]"));
    }
    if let Some(mitigations) = notice["mitigations"].as_array().filter(|m| !m.is_empty()) {
        let list: Vec<String> = mitigations.iter().map(describe_mitigation).collect();
        text.push_str(&format!("; mitigation: {}", list.join("; ")));
    }
    text
}

/// Delivery counters of one notifier.
#[derive(Debug, Default)]
pub struct Counters {
    /// Notices delivered (HTTP 2xx, script exit 0).
    pub sent: AtomicU64,
    /// Notices given up on after the retries (HTTP errors, failing or hung scripts).
    pub failed: AtomicU64,
    /// Notices dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Queued and not yet finished with.
    pending: AtomicU64,
}

/// A snapshot of `Counters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Set when the notifier is dropped: deliveries stop retrying and the rest of the queue is
/// dropped, so an abandoned notifier does not keep knocking at a dead endpoint.
#[derive(Debug, Clone, Default)]
pub struct Closing(Arc<AtomicBool>);

impl Closing {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps `pause`, or less when closing; whether it slept it all.
    pub fn sleep(&self, pause: Duration) -> bool {
        let end = Instant::now() + pause;
        while !self.is_set() {
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
        false
    }
}

/// A bounded queue and the thread delivering from it.
pub struct Queue {
    sender: Option<Sender<Value>>,
    counters: Arc<Counters>,
    closing: Closing,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    /// Starts a thread calling `deliver` for each notice; `deliver` says whether it succeeded
    /// and should give up early when `Closing` is set.
    pub fn start(
        name: &str,
        mut deliver: impl FnMut(&Value, &Closing) -> bool + Send + 'static,
    ) -> std::io::Result<Queue> {
        let (sender, receiver) = crossbeam_channel::bounded::<Value>(QUEUE);
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        let closing = Closing::default();
        let closed = closing.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for notice in receiver {
                    let counter = if closed.is_set() {
                        &shared.dropped
                    } else if deliver(&notice, &closed) {
                        &shared.sent
                    } else {
                        &shared.failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    shared.pending.fetch_sub(1, Ordering::Release);
                }
            })?;
        Ok(Queue {
            sender: Some(sender),
            counters,
            closing,
            thread: Some(thread),
        })
    }

    /// Queues without waiting; a full queue drops the notice.
    pub fn push(&self, notice: &Value) {
        let Some(sender) = &self.sender else { return };
        self.counters.pending.fetch_add(1, Ordering::Acquire);
        match sender.try_send(notice.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.pending.fetch_sub(1, Ordering::Release);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Waits until every queued notice is delivered or given up, at most `timeout`; whether
    /// the queue ran empty.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.counters.pending.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Queue {
    /// Abandons what is still queued (counted as dropped) and stops retries, without waiting
    /// on the network: call `flush` first to deliver it. The thread ends after the delivery
    /// in progress (bounded by its timeout).
    fn drop(&mut self) {
        self.closing.0.store(true, Ordering::Relaxed);
        self.sender.take();
        self.thread.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Webhooks and scripts say a record attack in terabits, not "31400.00 Gbps".
    #[test]
    fn record_rates_read_in_their_unit() {
        let notice = json!({
            "event": "attack_started", "direction": "incoming", "target": "203.0.113.10/32",
            "vectors": ["udp_flood"], "pps": 7_270_000_000u64, "bps": 31_400_000_000_000u64,
            "peak_pps": 7_270_000_000u64, "peak_bps": 31_400_000_000_000u64,
        });
        let text = summary(&notice);
        assert!(
            text.contains("at 7.27 Gpps, 31.40 Tbps (peak 7.27 Gpps, 31.40 Tbps)"),
            "{text}"
        );
    }

    #[test]
    fn attack_notices_read_as_one_line() {
        let notice = json!({
            "event": "attack_started", "attack_id": "1760000021000-in-203.0.113.10/32",
            "direction": "incoming", "target": "203.0.113.10/32",
            "vectors": ["udp_flood", "ntp_amplification"], "pps": 1000000, "bps": 4464000000u64,
            "peak_pps": 1000000, "peak_bps": 4464000000u64,
            "mitigations": [{"id": "x-flowspec", "status": "announced", "coverage": 0.93,
                "rule": {"kind": "flowspec", "filter": {"destination": "203.0.113.10/32", "protocols": [17],
                    "source_ports": [{"first": 123, "last": 123}]}, "action": {"type": "discard"}}},
                {"id": "x-blackhole", "status": "refused", "reason": "max_blackholes reached",
                "rule": {"kind": "blackhole", "prefix": "203.0.113.10/32", "next_hop": "192.0.2.1",
                "communities": ["65535:666"]}}]
        });
        assert_eq!(
            summary(&notice),
            "attack_started: incoming udp_flood, ntp_amplification on 203.0.113.10/32 at 1.00 Mpps, 4.46 Gbps (peak 1.00 Mpps, 4.46 Gbps) [attack 1760000021000-in-203.0.113.10/32]; mitigation: flowspec dst 203.0.113.10/32 proto 17 sport 123 then discard (covers 93%); blackhole 203.0.113.10/32 next-hop 192.0.2.1 communities 65535:666 [refused: max_blackholes reached]"
        );
        assert_eq!(target(&notice), "203.0.113.10/32");
    }

    #[test]
    fn mitigation_notices_name_their_target_and_attack() {
        let notice = json!({"event": "mitigation_withdrawn", "mitigation": {
            "id": "a1-blackhole", "attack_id": "a1", "hostgroup": "default", "since": 0,
            "rule": {"kind": "blackhole", "prefix": "203.0.113.10/32", "next_hop": "192.0.2.1",
                "communities": ["65535:666"]}}});
        assert_eq!(target(&notice), "203.0.113.10/32");
        assert_eq!(attack_id(&notice), "a1");
        assert_eq!(
            summary(&notice),
            "mitigation_withdrawn: blackhole 203.0.113.10/32 next-hop 192.0.2.1 communities 65535:666 for 203.0.113.10/32 (mitigation a1-blackhole)"
        );
    }
}
