//! Any bytes as the state directory's campaigns file (cut off, edited, another file's): read
//! or refused, never a panic; what is read lists and encodes again to the same campaigns.
#![no_main]
use libfuzzer_sys::fuzz_target;

use floodwall_hunt::campaign::{seal, Campaigns};

fuzz_target!(|data: &[u8]| {
    // As found, and with a valid checksum (an edit that kept it): the parser behind it.
    for bytes in [data.to_vec(), seal(data)] {
        if let Ok(campaigns) = Campaigns::decode(&bytes, 0.15, 1_000) {
            let list = campaigns.list();
            let again = Campaigns::decode(&campaigns.encode(), 0.15, 1_000)
                .expect("what was read encodes again");
            assert_eq!(again.list(), list);
        }
    }
});
