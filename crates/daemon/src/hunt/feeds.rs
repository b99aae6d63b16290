//! C2 feeds: loading and reloading (placeholder API; the implementation comes from branch
//! hunt-c2).

use std::path::Path;
use std::sync::Arc;

use floodwall_hunt::feed::C2List;
use floodwall_hunt::HuntConfig;

pub struct FeedWatcher {
    list: Arc<C2List>,
}

impl FeedWatcher {
    pub fn start(_config: &HuntConfig, _state_dir: &Path) -> anyhow::Result<FeedWatcher> {
        Ok(FeedWatcher {
            list: Arc::new(C2List::default()),
        })
    }

    pub fn current(&self) -> (u64, Arc<C2List>) {
        (0, self.list.clone())
    }

    pub fn stop(self) {}
}
