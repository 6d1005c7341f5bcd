//! Negotiating permessage-deflate (RFC 7692 §5, §7.1) from a client's
//! `Sec-WebSocket-Extensions` offers: the first offer the server can honor is accepted and
//! answered with the parameters agreed; an offer it cannot honor (a parameter it does not know,
//! one given twice, a bad value, a window it cannot keep to) is passed over, and with none left
//! the answer has no extension. A bad offer never fails the handshake.

use crate::compression::DeflateConfig;

/// What was agreed with one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// Whether the server keeps its compression context between messages.
    pub(crate) server_takeover: bool,
    /// Whether the client may keep its compression context between messages.
    pub(crate) client_takeover: bool,
    /// The `Sec-WebSocket-Extensions` value of the answer.
    pub(crate) answer: String,
}

/// The name of the `Sec-WebSocket-Extensions` header as the request's headers hold it.
pub(crate) const HEADER: &str = "sec-websocket-extensions";

/// The agreement on the first acceptable permessage-deflate offer among the values of the
/// request's `Sec-WebSocket-Extensions` headers, in order; `None` if none is acceptable.
pub(crate) fn negotiate<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<Agreement> {
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .find_map(|offer| {
            let mut parts = offer.split(';').map(str::trim);
            let name = parts.next()?;
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                return None;
            }
            accept(parts, config)
        })
}

/// The parameters of one offer, checked as RFC 7692 §7.1 says.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: bool,
}

/// The agreement on one permessage-deflate offer, if the server can honor it.
fn accept<'a>(params: impl Iterator<Item = &'a str>, config: &DeflateConfig) -> Option<Agreement> {
    let mut offer = Offer::default();
    for param in params {
        if param.is_empty() {
            // A stray `;` names nothing.
            continue;
        }
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
            None => (param, None),
        };
        match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                once(&mut offer.server_no_context_takeover)?
            }
            "client_no_context_takeover" if value.is_none() => {
                once(&mut offer.client_no_context_takeover)?
            }
            "server_max_window_bits" if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(value?)?);
            }
            "client_max_window_bits" => {
                if let Some(value) = value {
                    window_bits(value)?;
                }
                once(&mut offer.client_max_window_bits)?
            }
            _ => return None,
        }
    }
    // The compressor always uses the full 32 KiB window: a client that can only keep a
    // smaller one is declined.
    if offer.server_max_window_bits.is_some_and(|bits| bits < 15) {
        return None;
    }
    let server_takeover = config.server_context_takeover && !offer.server_no_context_takeover;
    let client_takeover = !offer.client_no_context_takeover && !config.client_no_context_takeover;
    let mut answer = String::from("permessage-deflate");
    if !server_takeover {
        answer.push_str("; server_no_context_takeover");
    }
    if !client_takeover {
        answer.push_str("; client_no_context_takeover");
    }
    if offer.server_max_window_bits.is_some() {
        // The answer must carry it when the offer did (§7.1.2.1), at most the value offered.
        answer.push_str("; server_max_window_bits=15");
    }
    Some(Agreement {
        server_takeover,
        client_takeover,
        answer,
    })
}

/// Sets a flag the first time; `None` (the offer is declined) the second.
fn once(flag: &mut bool) -> Option<()> {
    (!std::mem::replace(flag, true)).then_some(())
}

/// A parameter value without its quotes, if it had them (§7.1: a quoted string is allowed,
/// and must conform once unquoted).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(value),
    }
}

/// A window size in bits: 8 to 15, digits only, no leading zero (§7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(offers: &[&str], config: DeflateConfig) -> Option<String> {
        negotiate(offers.iter().copied(), &config).map(|a| a.answer)
    }

    #[test]
    fn browser_offers_are_accepted() {
        let d = DeflateConfig::default();
        let chrome = "permessage-deflate; client_max_window_bits";
        assert_eq!(
            answer(&[chrome], d).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        let agreed = negotiate([chrome], &d).unwrap();
        assert!(!agreed.server_takeover && agreed.client_takeover);
        assert_eq!(
            answer(&["permessage-deflate"], d).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let d = DeflateConfig::default();
        // Two offers in one header, then in two headers; the first asks for a small window.
        let offers = "permessage-deflate; server_max_window_bits=10, \
                      permessage-deflate; server_max_window_bits=15; client_no_context_takeover";
        let want = "permessage-deflate; server_no_context_takeover; \
                    client_no_context_takeover; server_max_window_bits=15";
        assert_eq!(answer(&[offers], d).as_deref(), Some(want));
        assert_eq!(
            answer(&["x-webkit-deflate-frame", "permessage-deflate"], d).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn offers_that_cannot_be_honored_are_declined() {
        let d = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=07",
            "permessage-deflate; client_max_window_bits=\"9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15",
            "permessage-deflate; mystery",
            "deflate-frame",
            "",
        ] {
            assert_eq!(answer(&[bad], d), None, "{bad:?}");
        }
        let quoted = "permessage-deflate; client_max_window_bits=\"10\"";
        assert!(answer(&[quoted], d).is_some());
    }

    #[test]
    fn context_takeover_follows_the_setting_and_the_offer() {
        let keep = DeflateConfig::default().server_context_takeover(true);
        let agreed = negotiate(["permessage-deflate"], &keep).unwrap();
        assert!(agreed.server_takeover);
        assert_eq!(agreed.answer, "permessage-deflate");
        // The client's wish not to have the server keep context is honored whatever the setting.
        let agreed = negotiate(["permessage-deflate; server_no_context_takeover"], &keep).unwrap();
        assert!(!agreed.server_takeover);
        let ask = DeflateConfig::default().client_no_context_takeover(true);
        let agreed = negotiate(["permessage-deflate"], &ask).unwrap();
        assert!(!agreed.client_takeover);
        assert_eq!(
            agreed.answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }
}
