//! C2 feeds: loading and reloading (being written).
