//! The client's address behind trusted proxies: ranges of proxy addresses (`10.0.0.0/8`,
//! `::1`), and the address an upgrade request was forwarded for (`Forwarded: for=`, else
//! `X-Forwarded-For`).

use std::net::IpAddr;
use std::str::FromStr;

use super::handshake::HandshakeRequest;

/// An address or a CIDR range of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address or a CIDR range (\"10.0.0.0/8\")");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpRange { addr, prefix })
    }
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4 address mapped into IPv6 counts as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.addr), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: u128, b: u128, bits: u32, prefix: u8) -> bool {
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (b >> shift)
}

/// The client's address for a request that came from `peer`: when `peer` is a trusted proxy,
/// the nearest address in the forwarding chain that is not one (the chain is read from the
/// proxy's end, so that addresses a client wrote itself are never believed). `None` when the
/// request names none that parses, or `peer` is not trusted.
pub(crate) fn client_ip(
    request: &HandshakeRequest,
    peer: IpAddr,
    trusted: &[IpRange],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return None;
    }
    let chain = chain(request);
    let mut last = None;
    for ip in chain.into_iter().rev() {
        // A hop that does not parse ends the chain: nothing before it can be vouched for.
        let ip = ip?;
        if !is_trusted(ip) {
            return Some(ip);
        }
        last = Some(ip);
    }
    last
}

/// The forwarding chain, client first: `Forwarded` (RFC 7239) if the request has it, else
/// `X-Forwarded-For`; an entry that is not an address (`unknown`, an obfuscated name) is `None`.
fn chain(request: &HandshakeRequest) -> Vec<Option<IpAddr>> {
    let headers = request.headers();
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
    };
    if headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("forwarded"))
    {
        named("forwarded")
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| node(v))
            })
            .collect()
    } else {
        named("x-forwarded-for").map(node).collect()
    }
}

/// One address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `"[::1]:80"`, `::1`.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> HandshakeRequest {
        HandshakeRequest {
            uri: "/".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let one: IpRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "::/129", "x", "10.0.0.0/", "1.2.3.4/-1"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let peer = "127.0.0.1".parse().unwrap();
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let xff = req(&[("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_ip(&xff, peer, &trusted), "203.0.113.9".parse().ok());
        assert_eq!(client_ip(&xff, peer, &[]), None);
        let fwd = req(&[(
            "Forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.3",
        )]);
        assert_eq!(client_ip(&fwd, peer, &trusted), "2001:db8::1".parse().ok());
    }

    #[test]
    fn hostile_values_give_no_address() {
        let peer = "127.0.0.1".parse().unwrap();
        let trusted = ranges(&["127.0.0.1"]);
        for value in [
            "",
            ",,,",
            "unknown",
            "1.2.3.4:99999",
            "[::1",
            "for=",
            "\u{0}",
        ] {
            let r = req(&[("X-Forwarded-For", value), ("Forwarded", value)]);
            assert_eq!(client_ip(&r, peer, &trusted), None, "{value:?}");
        }
        let partly = req(&[("X-Forwarded-For", "5.5.5.5, junk, 10.9.9.9")]);
        assert_eq!(client_ip(&partly, peer, &trusted), "10.9.9.9".parse().ok());
    }
}
