//! `GET /metrics`: every server of the runtime in the Prometheus text exposition format
//! (version 0.0.4).

use std::fmt::Write;

use crate::shared::RuntimeShared;
use crate::stats::Stats;

/// The content type of the exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a metric can go down (a gauge) or only up (a counter, named `…_total`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric drawn from [`Stats`].
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: fn(&Stats) -> u64,
}

macro_rules! metrics {
    ($($field:ident, $kind:ident, $help:literal;)*) => {
        &[$(Metric {
            name: stringify!($field),
            help: $help,
            kind: Kind::$kind,
            value: |s| s.$field,
        },)*]
    };
}

/// Every field of [`Stats`], in its order.
const STATS: &[Metric] = metrics! {
    connections, Gauge, "Connections open now (past their handshake).";
    accepted, Counter, "Connections taken in under the connection limits.";
    rejected, Counter, "Connections refused by the limits, the handshake hook or a shutdown.";
    handshake_failures, Counter, "WebSocket handshakes that failed (garbage, bad headers, timeouts).";
    http_requests, Counter, "Plain HTTP requests answered on the WebSocket port.";
    http_refused, Counter, "Plain HTTP requests refused for their framing (a body, smuggling).";
    closed, Counter, "Connections that were open and have closed.";
    messages_in, Counter, "Messages received from clients.";
    bytes_in, Counter, "Bytes received from clients after the handshake.";
    messages_out, Counter, "Frames queued to clients.";
    bytes_out, Counter, "Bytes written to clients.";
    frames_compressed, Counter, "Messages compressed for permessage-deflate clients.";
    writes, Counter, "Write system calls to clients.";
    dropped, Counter, "Messages dropped for slow consumers.";
    slow_consumer_closes, Counter, "Connections closed because their outbound queue was full.";
    protocol_errors, Counter, "Connections closed for breaking the protocol.";
    idle_closes, Counter, "Connections closed for being silent past the idle timeout.";
    handler_panics, Counter, "Handler calls that panicked.";
    mailbox_full, Counter, "Calls that found a core loop's mailbox full.";
    mailbox_timeouts, Counter, "Calls that failed for a full mailbox.";
};

/// Renders the metrics of every server of `runtime`.
pub(crate) fn render(runtime: &RuntimeShared) -> String {
    let mut out = String::with_capacity(4096);
    let stats: Vec<(String, Stats)> = runtime
        .servers
        .iter()
        .map(|s| (escape(&s.config.name), s.stats()))
        .collect();
    for m in STATS {
        let name = match m.kind {
            Kind::Counter => format!("corepush_{}_total", m.name),
            Kind::Gauge => format!("corepush_{}", m.name),
        };
        family(&mut out, &name, m.help, m.kind);
        for (server, s) in &stats {
            let _ = writeln!(out, "{name}{{server=\"{server}\"}} {}", (m.value)(s));
        }
    }
    family(
        &mut out,
        "corepush_clients",
        "Clients in the server's registry (open, not yet closing).",
        Kind::Gauge,
    );
    for s in &runtime.servers {
        let server = escape(&s.config.name);
        let _ = writeln!(
            out,
            "corepush_clients{{server=\"{server}\"}} {}",
            s.registry.count(None)
        );
    }
    family(
        &mut out,
        "corepush_groups",
        "Groups with at least one member.",
        Kind::Gauge,
    );
    for s in &runtime.servers {
        let server = escape(&s.config.name);
        let n = s.registry.group_count();
        let _ = writeln!(out, "corepush_groups{{server=\"{server}\"}} {n}");
    }
    family(
        &mut out,
        "corepush_flags",
        "Flags bound to at least one client.",
        Kind::Gauge,
    );
    for s in &runtime.servers {
        let server = escape(&s.config.name);
        let n = s.registry.flag_count();
        let _ = writeln!(out, "corepush_flags{{server=\"{server}\"}} {n}");
    }
    family(
        &mut out,
        "corepush_mailbox_depth",
        "Commands waiting in a core loop's mailbox (shared by the runtime's servers).",
        Kind::Gauge,
    );
    for (i, m) in runtime.mailboxes.iter().enumerate() {
        let _ = writeln!(out, "corepush_mailbox_depth{{worker=\"{i}\"}} {}", m.len());
    }
    family(
        &mut out,
        "corepush_shutting_down",
        "1 once the runtime's shutdown has begun, else 0.",
        Kind::Gauge,
    );
    let _ = writeln!(
        out,
        "corepush_shutting_down {}",
        u8::from(runtime.is_leaving())
    );
    out
}

fn family(out: &mut String, name: &str, help: &str, kind: Kind) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the format wants it: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stats_field_is_rendered() {
        // Stats has no other fields: a new one must be added to STATS too.
        let s = Stats {
            connections: 1,
            ..Stats::default()
        };
        let names: Vec<_> = STATS.iter().map(|m| m.name).collect();
        let debug = format!("{s:?}");
        let fields = debug.matches(": ").count();
        assert_eq!(fields, names.len(), "{debug}");
        for n in names {
            assert!(debug.contains(&format!("{n}: ")), "{n}");
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
