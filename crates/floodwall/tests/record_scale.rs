//! The two record attacks at record scale — 15.72 Tbps from 500,000 sources (Azure, Oct 2025)
//! and 31.4 Tbps for 35 s (Cloudflare, Nov 2025) — sampled 1:4096 and 1:16384 as border routers
//! would, their sampled datagrams fed straight to the decoder and engine (no capture file) and
//! checked against the truth like every scenario. Tens of millions of samples: `scripts/test`
//! runs this target in release (`--features scenario-tests`), where it takes under a minute.

mod support;

use floodwall_lab::simulate::Options;
use support::scenario::assert_matches_truth;

#[test]
fn record_15_tbps_from_500k_sources_at_1_in_16384() {
    assert_matches_truth(
        "record-15t",
        Options {
            sampling: Some(16384),
            ..Options::default()
        },
    );
}

#[test]
fn record_15_tbps_from_500k_sources_at_1_in_4096() {
    assert_matches_truth("record-15t", Options::default());
}

#[test]
fn record_31_tbps_for_35_s_at_1_in_16384() {
    assert_matches_truth("record-31t", Options::default());
}

#[test]
fn record_31_tbps_for_35_s_at_1_in_4096() {
    assert_matches_truth(
        "record-31t",
        Options {
            sampling: Some(4096),
            ..Options::default()
        },
    );
}
