//! Attack vectors from a target's unexplained per-class packet rates (see
//! `counters::Unexplained`): ordinary traffic — answered data, a service's requests, a
//! download — is never a vector, whatever its volume.

use crate::counters::pk;
use crate::vocab::Vector;

/// A protocol family carrying at least this share of the unexplained packets contributes its
/// vector.
const FAMILY_SHARE: f64 = 0.2;
/// A TCP kind, or the reflected ports together, dominating its family.
const DOMINANT_SHARE: f64 = 0.5;
/// Fragments at least this share of the unexplained packets make a fragment flood.
const FRAGMENT_SHARE: f64 = 0.3;

/// The vectors of `u` (unexplained packets indexed by `pk::*`), sorted in `Vector` order.
pub(crate) fn classify(u: &[f64; pk::N]) -> Vec<Vector> {
    let mut out = Vec::new();
    let total: f64 = u[pk::TCP..=pk::OTHER].iter().sum();
    if total <= 0.0 {
        return out;
    }
    let family = |i: usize| u[i] >= FAMILY_SHARE * total && u[i] > 0.0;

    if family(pk::UDP) {
        let udp = u[pk::UDP];
        if u[pk::AMP] >= DOMINANT_SHARE * udp {
            // Every reflector port with a real part of the UDP packets, at least the largest.
            let ports = &u[pk::AMP_PORT..pk::AMP_PORT + Vector::AMPLIFICATION.len()];
            let top = ports
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i);
            for (i, (&n, (_, vector))) in ports.iter().zip(Vector::AMPLIFICATION).enumerate() {
                if Some(i) == top || n >= FAMILY_SHARE * udp {
                    out.push(vector);
                }
            }
        } else {
            out.push(Vector::UdpFlood);
        }
    }
    if family(pk::TCP) {
        let tcp = u[pk::TCP];
        // ACK floods: bare ACKs, random-flag ACKs and data nobody answers, from many remotes
        // on scattered ports (Mirai's `ack` carries a 512-byte payload).
        let ack = u[pk::BARE] + u[pk::URG] + u[pk::DATA];
        let before = out.len();
        for (n, vector) in [
            (u[pk::SYN], Vector::SynFlood),
            (ack, Vector::AckFlood),
            (u[pk::RST], Vector::RstFlood),
        ] {
            if n >= DOMINANT_SHARE * tcp {
                out.push(vector);
            }
        }
        if out.len() == before {
            out.push(Vector::TcpFlood);
        }
    }
    if family(pk::ICMP) {
        out.push(Vector::IcmpFlood);
    }
    if family(pk::GRE) {
        out.push(Vector::GreFlood);
    }
    if u[pk::FRAG] >= FRAGMENT_SHARE * total {
        out.push(Vector::FragmentFlood);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(usize, f64)]) -> [f64; pk::N] {
        let mut c = [0.0; pk::N];
        for &(i, v) in pairs {
            c[i] += v;
        }
        c
    }

    #[test]
    fn amplification_replaces_udp_flood() {
        let c = counts(&[(pk::UDP, 100.0), (pk::AMP, 90.0), (pk::AMP_PORT + 1, 90.0)]);
        assert_eq!(classify(&c), vec![Vector::NtpAmplification]);
        let c = counts(&[(pk::UDP, 100.0), (pk::AMP, 10.0), (pk::AMP_PORT, 10.0)]);
        assert_eq!(classify(&c), vec![Vector::UdpFlood]);
    }

    #[test]
    fn mixed_families() {
        let c = counts(&[
            (pk::TCP, 50.0),
            (pk::SYN, 40.0),
            (pk::ICMP, 30.0),
            (pk::OTHER, 20.0),
        ]);
        assert_eq!(classify(&c), vec![Vector::SynFlood, Vector::IcmpFlood]);
        let c = counts(&[(pk::TCP, 100.0), (pk::SYN, 20.0), (pk::ODD, 60.0)]);
        assert_eq!(classify(&c), vec![Vector::TcpFlood]);
        let c = counts(&[
            (pk::TCP, 100.0),
            (pk::BARE, 30.0),
            (pk::URG, 10.0),
            (pk::DATA, 40.0),
        ]);
        assert_eq!(classify(&c), vec![Vector::AckFlood]);
        assert!(classify(&[0.0; pk::N]).is_empty());
    }
}
