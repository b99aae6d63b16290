//! Announce-only BGP speaker: sessions to several peers (RFC 4271 FSM, active side), MP-BGP
//! for IPv4/IPv6 unicast and FlowSpec, and the routes Floodwall's mitigations hold.
