//! Webhooks: each notice POSTed to a URL, as the notice's JSON (`format = "json"`) or as a
//! Slack-compatible `{"text": "…"}` with one readable line (`format = "slack"`; Slack, Mattermost
//! and Rocket.Chat incoming webhooks take it).
//!
//! Delivery runs on an own thread behind a bounded queue (`notice::QUEUE`): a slow or dead
//! endpoint costs the daemon nothing but dropped notices, which are counted. A request has a
//! whole-request timeout; connection errors, timeouts, 429 and 5xx are retried with a doubling
//! backoff (they are usually passing), other 4xx are not (the request itself is wrong).
//! Redirects are not followed (a redirected POST becomes a GET on most clients): a 3xx fails
//! and is logged. Webhook URLs often carry a secret (Slack's do), so logs name only the
//! scheme and host.
//!
//! ```toml
//! [[webhooks]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"        # or "json" (default): the notice itself
//! timeout_seconds = 5
//! ```

use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::notice::{self, Closing, Queue, Stats};
use super::Notifier;

/// Attempts per notice (the first and the retries).
const ATTEMPTS: u32 = 4;
/// The first pause between attempts; doubled each time (0.5, 1, 2 s).
const BACKOFF: Duration = Duration::from_millis(500);

/// The body of the POST.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notice as it is.
    #[default]
    Json,
    /// `{"text": "<one line>"}`.
    Slack,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where to POST (http or https). Required; default: empty (an error).
    #[schemars(example = &"https://hooks.example.net/floodwall")]
    pub url: String,
    /// `"json"` (the notice) or `"slack"` (`{"text": …}`). Default: `"json"`.
    pub format: WebhookFormat,
    /// Whole-request timeout per attempt, in seconds. Default: `5`.
    pub timeout_seconds: f64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            format: WebhookFormat::Json,
            timeout_seconds: 5.0,
        }
    }
}

impl WebhookConfig {
    /// Refuses what cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        let url = &self.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("webhook: url `{url}` must start with http:// or https://");
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 300.0) {
            bail!(
                "webhook {}: timeout_seconds must be in (0, 300]",
                redact(url)
            );
        }
        Ok(())
    }
}

/// Posts notices to a URL from its own thread.
pub struct Webhook {
    name: String,
    queue: Queue,
}

/// The body for a notice.
pub fn body(format: WebhookFormat, notice: &Value) -> Value {
    match format {
        WebhookFormat::Json => notice.clone(),
        WebhookFormat::Slack => serde_json::json!({ "text": notice::summary(notice) }),
    }
}

impl Webhook {
    pub fn new(config: &WebhookConfig) -> Result<Webhook> {
        config.validate()?;
        let url = config.url.clone();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(config.timeout_seconds)))
            // Statuses are judged here (retry or not), not turned into errors.
            .http_status_as_error(false)
            .user_agent(concat!("floodwall/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .build()
            .into();
        let format = config.format;
        let name = format!("webhook {}", redact(&url));
        let log_name = name.clone();
        let queue = Queue::start("webhook", move |notice, closing| {
            post(&agent, &url, &log_name, &body(format, notice), closing)
        })?;
        Ok(Webhook { name, queue })
    }

    pub fn stats(&self) -> Stats {
        self.queue.stats()
    }

    /// Waits up to `timeout` for the queue to drain; whether it did.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.queue.flush(timeout)
    }
}

/// One notice, with retries; whether it was accepted.
fn post(agent: &ureq::Agent, url: &str, name: &str, body: &Value, closing: &Closing) -> bool {
    let bytes = body.to_string();
    let mut pause = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let outcome = agent
            .post(url)
            .content_type("application/json")
            .send(bytes.as_bytes());
        let retry = match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return true;
                }
                eprintln!("{name}: HTTP {status} (attempt {attempt}/{ATTEMPTS})");
                status == 429 || status >= 500
            }
            Err(e) => {
                eprintln!("{name}: {e} (attempt {attempt}/{ATTEMPTS})");
                true
            }
        };
        if !retry || attempt == ATTEMPTS || !closing.sleep(pause) {
            break;
        }
        pause *= 2;
    }
    false
}

/// `scheme://host[:port]/…`: the URL without its path and query, which may hold a secret.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // user:password@host
    let host = authority.rsplit('@').next().unwrap_or_default();
    if authority.len() < rest.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

impl Notifier for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn notify(&mut self, notice: &Value) {
        self.queue.push(notice);
    }

    fn close(&mut self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_keep_no_secrets() {
        let config: WebhookConfig =
            toml::from_str("url = \"http://127.0.0.1/\"\nformat = \"slack\"").unwrap();
        assert_eq!(
            (config.format, config.timeout_seconds),
            (WebhookFormat::Slack, 5.0)
        );
        assert!(toml::from_str::<WebhookConfig>("format = \"xml\"").is_err());
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }
}
