//! `floodwall run`: the daemon — the pipeline built from the configuration (collectors, engine,
//! actions, events file, notifiers) until SIGTERM or SIGINT stops it cleanly (withdrawing
//! mitigations unless `[mitigation] keep_on_shutdown`).

use anyhow::{Context as _, Result};
use floodwall_daemon::config::Config;
use floodwall_daemon::logging::log;
use floodwall_daemon::pipeline::Pipeline;

use super::RunArgs;

pub fn run(args: RunArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.add_networks(&args.network);
    config.require_networks()?;
    if args.dry_run {
        config.force_dry_run();
    }
    config.require_trusted_exporters()?;
    let networks = config.detection_config().networks.len();
    let events_path = config.events.file.clone();
    let pipeline = Pipeline::daemon(config, Vec::new())?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, pipeline.stop_flag())
            .context("installing signal handlers")?;
    }
    log(format!(
        "listening on {}; watching {} networks; events to {}",
        pipeline
            .local_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        networks,
        events_path.display()
    ));
    if let Some(url) = pipeline.http_url() {
        log(format!(
            "{}{url} ({url}/metrics, {url}/api/v1/openapi.json)",
            floodwall_daemon::serve::LOG_LINE
        ));
    }
    pipeline.wait()?;
    Ok(())
}
