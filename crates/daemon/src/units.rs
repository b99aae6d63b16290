//! Rates for people: the daemon's events, logs and notices, and the lab's benchmark tables, all
//! format numbers here. Two styles, because both are compared as text by tests and read by
//! scripts: [`human_rate`] (with the unit, two decimals) and [`compact_si`] (no unit, short).

pub fn human_bps(bps: u64) -> String {
    human_rate(bps as f64, "bps")
}

pub fn human_pps(pps: u64) -> String {
    human_rate(pps as f64, "pps")
}

/// The rate formatter of what operators read (events, log lines, notices): SI prefixes up to
/// tera, two decimals: `31.40 Tbps`, `120.00 kpps`.
pub fn human_rate(value: f64, unit: &str) -> String {
    const PREFIXES: [(f64, &str); 5] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")];
    let (scale, prefix) = PREFIXES
        .iter()
        .find(|(s, _)| value >= *s)
        .copied()
        .unwrap_or((1.0, ""));
    format!("{:.2} {prefix}{unit}", value / scale)
}

/// `12.3 M`, `456.7 k`: rates at a glance, in the benchmark tables, whose columns name the unit.
pub fn compact_si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_an_operator_writes_them() {
        assert_eq!(human_bps(31_400_000_000_000), "31.40 Tbps");
        assert_eq!(human_pps(120_000), "120.00 kpps");
        assert_eq!(human_pps(0), "0.00 pps");
    }

    #[test]
    fn compact_rates_fit_a_table_cell() {
        assert_eq!(compact_si(12_345_678.0), "12.35 M");
        assert_eq!(compact_si(456_700.0), "456.7 k");
        assert_eq!(compact_si(999.4), "999");
    }
}
