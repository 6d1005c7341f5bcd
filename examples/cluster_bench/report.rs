//! One run's figures, their medians over the runs, and the printed table with the targets.

use std::collections::BTreeMap;

use crate::Opts;
use crate::broadcast::Broadcast;
use crate::handoff::Handoff;
use crate::push::{Latency, Publishes, Throughput};

/// The single-push paths, in the order `run_once` measures them: key and label.
const PATHS: [(&str, &str); 5] = [
    ("local", "Local backend, same instance"),
    ("same", "Redis backend, same instance"),
    ("cross", "Redis backend, cross-instance"),
    ("chan", "Channel backend, cross-instance"),
    ("gw", "Gateway: business → gateway"),
];

/// One run's figures by name (latencies in ms, CPU in µs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Run(BTreeMap<String, f64>);

impl Run {
    fn set(&mut self, key: impl Into<String>, value: f64) {
        self.0.insert(key.into(), value);
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(f64::NAN)
    }

    /// The most of a core that other processes took in any phase, percent.
    pub(crate) fn others_pct(&self) -> f64 {
        self.0.get("others").copied().unwrap_or(0.0)
    }

    /// Records a phase's share taken by other processes; the run keeps the highest.
    fn others(&mut self, pct: f64) {
        let was = self.0.get("others").copied().unwrap_or(0.0);
        self.set("others", was.max(pct));
    }

    pub(crate) fn single(&mut self, latencies: &[Latency]) {
        for ((key, _), l) in PATHS.iter().zip(latencies) {
            let n = l.latencies.len().max(1) as f64;
            self.set(format!("p50.{key}"), ms(pct(&l.latencies, 0.50)));
            self.set(format!("p99.{key}"), ms(pct(&l.latencies, 0.99)));
            self.set(format!("ow50.{key}"), ms(pct(&l.oneway, 0.50)));
            self.set(format!("ow99.{key}"), ms(pct(&l.oneway, 0.99)));
            self.set(format!("cpu.{key}"), l.usage.servers_ns as f64 / 1e3 / n);
            self.set(format!("redis.{key}"), l.usage.redis_ns as f64 / 1e3 / n);
            self.set(format!("wake.{key}"), l.usage.servers_runs as f64 / n);
            self.set(format!("rwake.{key}"), l.usage.redis_runs as f64 / n);
            for (server, &(ns, runs)) in ["a", "b"].iter().zip(&l.usage.each) {
                self.set(format!("cpu.{key}.{server}"), ns as f64 / 1e3 / n);
                self.set(format!("wake.{key}.{server}"), runs as f64 / n);
            }
            self.others(l.usage.others_pct());
        }
    }

    pub(crate) fn handoff(&mut self, h: &Handoff) {
        self.set("handoff.cpu", h.cpu_ns / 1e3);
        self.set("handoff.wall", h.latency_ns / 1e3);
    }

    pub(crate) fn throughput(&mut self, pushed: &Throughput, sync: &Publishes, bytes: usize) {
        let n = pushed.pushes.max(1) as f64;
        let rate = pushed.pushes as f64 / pushed.window.as_secs_f64().max(1e-9);
        let sync_rate = sync.count as f64 / sync.elapsed.as_secs_f64().max(1e-9);
        self.set("tput.rate", rate);
        self.set("tput.cpu", pushed.usage.servers_ns as f64 / 1e3 / n);
        self.set("tput.redis", pushed.usage.redis_ns as f64 / 1e3 / n);
        self.set("sync.rate", sync_rate);
        self.set(
            "sync.redis",
            sync.redis_ns as f64 / 1e3 / sync.count.max(1) as f64,
        );
        self.set("tput.ratio", rate / sync_rate);
        self.set("wire.bytes", bytes as f64);
        self.others(pushed.usage.others_pct());
    }

    /// The same cross-instance pushes, many in flight, on the Channel pair (after
    /// [`throughput`](Run::throughput)).
    pub(crate) fn brokered(&mut self, pushed: &Throughput) {
        let n = pushed.pushes.max(1) as f64;
        let rate = pushed.pushes as f64 / pushed.window.as_secs_f64().max(1e-9);
        self.set("ctput.rate", rate);
        self.set("ctput.cpu", pushed.usage.servers_ns as f64 / 1e3 / n);
        self.set("ctput.broker", pushed.usage.redis_ns as f64 / 1e3 / n);
        self.set("ctput.ratio", rate / self.get("tput.rate"));
        self.others(pushed.usage.others_pct());
    }

    /// A broadcast measurement of `setup` (`cluster`, `channel`, `gateway` or `alone`) at
    /// `depth` in flight.
    pub(crate) fn broadcast(&mut self, setup: &str, depth: usize, b: &Broadcast) {
        let key = |what: &str| format!("bc.{setup}.{depth}.{what}");
        let n = b.deliveries.max(1) as f64;
        self.set(
            key("rate"),
            b.deliveries as f64 / b.window.as_secs_f64().max(1e-9),
        );
        self.set(key("cpu"), b.usage.servers_ns as f64 / 1e3 / n);
        self.set(key("redis"), b.usage.redis_ns as f64 / 1e3 / n);
        for (server, &(ns, _)) in ["a", "b"].iter().zip(&b.usage.each) {
            self.set(key(&format!("cpu.{server}")), ns as f64 / 1e3 / n);
        }
        self.set(key("own50"), ms(pct(&b.to_own, 0.50)));
        self.set(key("own99"), ms(pct(&b.to_own, 0.99)));
        if !b.to_other.is_empty() {
            self.set(key("other50"), ms(pct(&b.to_other, 0.50)));
            self.set(key("other99"), ms(pct(&b.to_other, 0.99)));
        }
        self.others(b.usage.others_pct());
    }

    pub(crate) fn brief(&self) -> String {
        format!(
            "cross push p50 {:.3} ms p99 {:.3} ms, {:.1} µs CPU/push (Channel {:.3} / {:.3} \
             ms, {:.1} µs; same instance {:.3} / {:.3} ms, Local {:.3} / {:.3} ms, Gateway \
             {:.3} / {:.3} ms, {:.1} µs); {:.0} \
             pushes/s in flight (Channel {:.0}) vs {:.0} sync PUBLISH/s; others took {:.0}% \
             of a core at most",
            self.get("p50.cross"),
            self.get("p99.cross"),
            self.get("cpu.cross"),
            self.get("p50.chan"),
            self.get("p99.chan"),
            self.get("cpu.chan"),
            self.get("p50.same"),
            self.get("p99.same"),
            self.get("p50.local"),
            self.get("p99.local"),
            self.get("p50.gw"),
            self.get("p99.gw"),
            self.get("cpu.gw"),
            self.get("tput.rate"),
            self.get("ctput.rate"),
            self.get("sync.rate"),
            self.get("others"),
        )
    }

    /// The median of every figure over `runs`.
    fn median_of(runs: &[Run]) -> Run {
        let mut out = Run::default();
        if let Some(first) = runs.first() {
            for key in first.0.keys() {
                out.set(
                    key.clone(),
                    median(runs.iter().map(|r| r.get(key)).collect()),
                );
            }
        }
        out
    }
}

/// Prints the medians of `runs` as tables, then each target with its verdict.
pub(crate) fn print(runs: &[Run], o: &Opts) {
    let m = Run::median_of(runs);
    println!("\nmedians of {} run(s)", runs.len());
    if m.has("p50.cross") {
        print_single(&m, o);
    }
    if m.has("tput.rate") {
        print_throughput(&m, o);
    }
    if o.inflight
        .iter()
        .any(|d| m.has(&format!("bc.cluster.{d}.rate")))
    {
        print_broadcast(&m, o);
    }
    println!("\ntargets (Redis backend)");
    let verdict = |label: &str, value: f64, limit: f64, unit: &str| {
        if value.is_nan() {
            return;
        }
        let met = if value <= limit { "met" } else { "missed" };
        println!("  {label:<50} {value:>9.3} {unit:<3} (≤ {limit}) {met}");
    };
    verdict("cross-instance push p50", m.get("p50.cross"), 0.15, "ms");
    verdict("cross-instance push p99", m.get("p99.cross"), 1.0, "ms");
    verdict(
        "server CPU per cross-instance push",
        m.get("cpu.cross"),
        10.0,
        "µs",
    );
    for &depth in &o.inflight {
        let get = |what: &str| m.get(&format!("bc.cluster.{depth}.{what}"));
        verdict(
            &format!("broadcast, {depth} in flight: server CPU per delivery"),
            get("cpu"),
            1.5,
            "µs",
        );
        verdict(
            &format!("broadcast, {depth} in flight: other instance's last"),
            get("other50") / get("own50"),
            1.2,
            "×",
        );
    }
    println!(
        "others' share of the machine during the phases: {:.0}% of a core (median over the runs \
         of the busiest phase)",
        m.get("others")
    );
}

fn print_single(m: &Run, o: &Opts) {
    println!(
        "\nsingle push, one in flight ({} per path; {}-byte payload)",
        o.pushes, o.payload
    );
    println!(
        "{:<31} {:>7} {:>7} {:>9} {:>9} {:>16} {:>16} {:>16} {:>16}",
        "",
        "p50 ms",
        "p99 ms",
        "1-way p50",
        "1-way p99",
        "server CPU µs",
        "server wake-ups",
        "Redis/broker µs",
        "its wake-ups"
    );
    for (key, label) in PATHS {
        let redis = |what: &str| {
            if key == "local" || key == "gw" {
                "–".to_owned()
            } else {
                format!("{:.1}", m.get(&format!("{what}.{key}")))
            }
        };
        println!(
            "{label:<31} {:>7.3} {:>7.3} {:>9.3} {:>9.3} {:>16.1} {:>16.1} {:>16} {:>16}",
            m.get(&format!("p50.{key}")),
            m.get(&format!("p99.{key}")),
            m.get(&format!("ow50.{key}")),
            m.get(&format!("ow99.{key}")),
            m.get(&format!("cpu.{key}")),
            m.get(&format!("wake.{key}")),
            redis("redis"),
            redis("rwake"),
        );
    }
    println!(
        "(per push; p50/p99: the control client's write → the target's read; 1-way: the \
         handler's push → the target's read, by the wall clock; server: both instances of the \
         pair for the Redis and Channel rows, gateway + business process for the Gateway row, \
         the Local instance for the first; wake-ups: how often their threads were put on a CPU)"
    );
    println!(
        "Gateway, per push: gateway {:.1} µs, {:.1} wake-ups; business process {:.1} µs, {:.1} \
         wake-ups; Gateway / Local: p50 {:.2}×, p99 {:.2}×, 1-way p50 {:.2}×, server CPU {:.2}×",
        m.get("cpu.gw.a"),
        m.get("wake.gw.a"),
        m.get("cpu.gw.b"),
        m.get("wake.gw.b"),
        m.get("p50.gw") / m.get("p50.local"),
        m.get("p99.gw") / m.get("p99.local"),
        m.get("ow50.gw") / m.get("ow50.local"),
        m.get("cpu.gw") / m.get("cpu.local"),
    );
    println!(
        "cross-instance, per push: instance A {:.1} µs, {:.1} wake-ups; instance B {:.1} µs, {:.1} \
         wake-ups",
        m.get("cpu.cross.a"),
        m.get("wake.cross.a"),
        m.get("cpu.cross.b"),
        m.get("wake.cross.b"),
    );
    println!(
        "Channel backend / Redis backend, cross-instance: p50 {:.2}×, p99 {:.2}×, server CPU \
         {:.2}×",
        m.get("p50.chan") / m.get("p50.cross"),
        m.get("p99.chan") / m.get("p99.cross"),
        m.get("cpu.chan") / m.get("cpu.cross"),
    );
    println!(
        "this machine: one blocking hand-off between two threads (a byte to a sleeping reader) \
         costs {:.1} µs of CPU and takes {:.1} µs",
        m.get("handoff.cpu"),
        m.get("handoff.wall"),
    );
}

fn print_throughput(m: &Run, o: &Opts) {
    println!(
        "\ncross-instance pushes, many in flight ({} {}-byte messages on the wire)",
        o.window,
        m.get("wire.bytes")
    );
    println!(
        "{:<44} {:>10} {:>20} {:>19}",
        "", "per second", "server CPU µs/push", "Redis CPU µs/msg"
    );
    println!(
        "{:<44} {:>10.0} {:>20.1} {:>19.1}",
        "corepush transport (pipelines what is pending)",
        m.get("tput.rate"),
        m.get("tput.cpu"),
        m.get("tput.redis"),
    );
    println!(
        "{:<44} {:>10.0} {:>20} {:>19.1}",
        "one synchronous PUBLISH per message",
        m.get("sync.rate"),
        "–",
        m.get("sync.redis"),
    );
    println!(
        "{:<44} {:>10.0} {:>20.1} {:>19.1}",
        "Channel backend (broker CPU in the last column)",
        m.get("ctput.rate"),
        m.get("ctput.cpu"),
        m.get("ctput.broker"),
    );
    println!(
        "ratio: {:.1}× (median of the runs' ratios); Channel / Redis backend: {:.2}×",
        m.get("tput.ratio"),
        m.get("ctput.ratio")
    );
}

fn print_broadcast(m: &Run, o: &Opts) {
    println!(
        "\nbroadcast (send_raw_to_all) to {} clients from {} senders; closed loop",
        o.clients, o.senders
    );
    println!(
        "{:<48} {:>12} {:>15} {:>15} {:>12} {:>12}",
        "", "deliveries/s", "server µs/deliv", "Redis µs/deliv", "last p50 ms", "last p99 ms"
    );
    for &depth in &o.inflight {
        let get = |setup: &str, what: &str| m.get(&format!("bc.{setup}.{depth}.{what}"));
        println!("{depth} in flight per sender");
        println!(
            "{:<48} {:>12.0} {:>15.3} {:>15} {:>12.2} {:>12.2}",
            "  Local backend, one instance",
            get("alone", "rate"),
            get("alone", "cpu"),
            "–",
            get("alone", "own50"),
            get("alone", "own99"),
        );
        println!(
            "{:<48} {:>12.0} {:>15.3} {:>15.3} {:>12.2} {:>12.2}",
            "  Redis backend, 2 instances: sender's instance",
            get("cluster", "rate"),
            get("cluster", "cpu"),
            get("cluster", "redis"),
            get("cluster", "own50"),
            get("cluster", "own99"),
        );
        println!(
            "{:<48} {:>12} {:>15} {:>15} {:>12.2} {:>12.2}",
            "                              other instance",
            "",
            "",
            "",
            get("cluster", "other50"),
            get("cluster", "other99"),
        );
        println!(
            "  other instance's last delivery / the sender's instance's: {:.2}× (ratio of the \
             medians of p50)",
            get("cluster", "other50") / get("cluster", "own50")
        );
        if m.has(&format!("bc.channel.{depth}.rate")) {
            println!(
                "{:<48} {:>12.0} {:>15.3} {:>15.3} {:>12.2} {:>12.2}",
                "  Channel backend, 2 instances: sender's inst.",
                get("channel", "rate"),
                get("channel", "cpu"),
                get("channel", "redis"),
                get("channel", "own50"),
                get("channel", "own99"),
            );
            println!(
                "{:<48} {:>12} {:>15} {:>15} {:>12.2} {:>12.2}",
                "                              other instance",
                "",
                "",
                "",
                get("channel", "other50"),
                get("channel", "other99"),
            );
            println!(
                "  Channel: other instance's last / the sender's instance's: {:.2}×; server \
                 CPU per delivery, Channel / Redis: {:.2}× (broker µs/deliv in the Redis column)",
                get("channel", "other50") / get("channel", "own50"),
                get("channel", "cpu") / get("cluster", "cpu"),
            );
        }
        if m.has(&format!("bc.gateway.{depth}.rate")) {
            println!(
                "{:<48} {:>12.0} {:>15.3} {:>15} {:>12.2} {:>12.2}",
                "  Gateway: gateway + business process",
                get("gateway", "rate"),
                get("gateway", "cpu"),
                "–",
                get("gateway", "own50"),
                get("gateway", "own99"),
            );
            println!(
                "  Gateway: gateway {:.3} + business process {:.3} µs per delivery; Gateway / \
                 Local: server CPU {:.2}×, last delivery p50 {:.2}×; against Socket.IO's 10–12 \
                 µs: {:.1}–{:.1}× less",
                get("gateway", "cpu.a"),
                get("gateway", "cpu.b"),
                get("gateway", "cpu") / get("alone", "cpu"),
                get("gateway", "own50") / get("alone", "own50"),
                10.0 / get("gateway", "cpu"),
                12.0 / get("gateway", "cpu"),
            );
        }
    }
}

/// Nearest-rank percentile of sorted values (0 if none).
fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}
