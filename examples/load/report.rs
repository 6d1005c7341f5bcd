//! The load benchmark's tables: one per fan-out phase, echo and memory, the ratios to the
//! baselines, and the fan-out window's targets checked against the same run's figures.

use crate::run::{self, Fig, Shift, Summary};
use crate::{Opts, Pace};

/// Prints every table for `rows` (server, clients, medians).
pub(super) fn print(rows: &[(String, usize, Summary)], o: &Opts) {
    println!("\nmedians of {} run(s); latencies in ms", o.runs);
    let phases = o.phases(o.clients.first().copied().unwrap_or(1000));
    for (i, phase) in phases.iter().enumerate() {
        println!("\nfan-out, {}", phase.name);
        let head = [
            "server",
            "clients",
            "deliv/s",
            "res p50",
            "res p99",
            "last p50",
            "last p99",
            "µs/deliv",
            "srv%",
            "cli%",
            "oth%",
            "f/write",
        ];
        let widths = [12, 7, 10, 8, 8, 8, 8, 8, 5, 5, 5, 7];
        line(&widths, head.iter().map(|h| h.to_string()).collect());
        for (kind, n, s) in rows {
            let Some(f) = s.fanout.get(i) else { continue };
            line(
                &widths,
                vec![
                    kind.clone(),
                    n.to_string(),
                    format!("{:.0}", f.deliveries_per_s),
                    format!("{:.2}", f.result_p50),
                    format!("{:.2}", f.result_p99),
                    format!("{:.2}", f.last_p50),
                    format!("{:.2}", f.last_p99),
                    format!("{:.3}", f.cpu_per_delivery_us),
                    format!("{:.0}", f.server_cpu),
                    format!("{:.0}", f.client_cpu),
                    format!("{:.0}", f.other_cpu),
                    if f.frames_per_write.is_nan() {
                        "-".to_owned()
                    } else {
                        format!("{:.1}", f.frames_per_write)
                    },
                ],
            );
        }
    }
    println!("\necho and memory");
    let widths = [12, 7, 8, 6, 6, 7, 7, 7];
    let head = [
        "server", "clients", "echo/s", "p50", "p99", "µs/echo", "RSS B/c", "conn/s",
    ];
    line(&widths, head.iter().map(|h| h.to_string()).collect());
    for (kind, n, s) in rows {
        line(
            &widths,
            vec![
                kind.clone(),
                n.to_string(),
                format!("{:.0}", s.echo_per_s),
                format!("{:.3}", s.echo_p50),
                format!("{:.3}", s.echo_p99),
                format!("{:.2}", s.cpu_per_echo_us),
                format!("{:.0}", s.rss_per_conn),
                format!("{:.0}", s.connect_per_s),
            ],
        );
    }
    println!(
        "deliv/s: broadcast frames received by all clients per second; res / last: send → \
         broadcastResult / → the last client's delivery;\nµs/deliv, µs/echo: the server \
         process's user+system CPU time per delivery / per echo round trip; srv% cli% oth%: CPU \
         of the server, of this load generator, of everything else during the phase (100% = \
         one core);\nf/write: frames per write call (corepush counts them); RSS B/c: the server's resident memory per idle connection; conn/s: \
         connects + handshakes per second"
    );
    let find = |k: &str, n: usize| {
        rows.iter()
            .find(|(kind, m, _)| kind == k && *m == n)
            .map(|r| &r.2)
    };
    for base in ["floor", "tokio"] {
        let pairs: Vec<_> = o
            .clients
            .iter()
            .filter_map(|&n| Some((n, find("corepush", n)?, find(base, n)?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        println!(
            "\ncorepush / {base} (deliveries/s, echo/s: higher is better; CPU: lower is better)"
        );
        println!(
            "{:>7} {:>13} {:>17} {:>12} {:>14} {:>14}",
            "clients", "deliveries/s", "CPU per delivery", "echo/s", "CPU per echo", "RSS per conn"
        );
        for (n, c, f) in pairs {
            let (Some(cf), Some(ff)) = (c.fanout.first(), f.fanout.first()) else {
                continue;
            };
            println!(
                "{n:>7} {:>12.2}x {:>16.2}x {:>11.2}x {:>13.2}x {:>13.2}x",
                cf.deliveries_per_s / ff.deliveries_per_s,
                cf.cpu_per_delivery_us / ff.cpu_per_delivery_us,
                c.echo_per_s / f.echo_per_s,
                c.cpu_per_echo_us / f.cpu_per_echo_us,
                c.rss_per_conn / f.rss_per_conn,
            );
        }
    }
    targets(o, find);
}

/// The fan-out window's targets, where the run has what they compare.
fn targets<'a>(o: &Opts, find: impl Fn(&str, usize) -> Option<&'a Summary>) {
    println!("\ntargets (corepush: the default, adaptive window)");
    for &n in &o.clients {
        let Some(c) = find("corepush", n) else {
            continue;
        };
        for (i, phase) in o.phases(n).iter().enumerate() {
            let Some(cf) = c.fanout.get(i) else { continue };
            match phase.pace {
                Pace::Deep => {
                    let Some(t) = find("tokio", n).and_then(|t| t.fanout.get(i)) else {
                        continue;
                    };
                    let ratio = cf.deliveries_per_s / t.deliveries_per_s;
                    println!(
                        "{n:>6} clients, {}: deliveries/s {ratio:.2}× tokio (target ≥ 2.5×): {}",
                        phase.name,
                        verdict(ratio >= 2.5)
                    );
                }
                Pace::Result => println!(
                    "{n:>6} clients, {}: {:.3} µs server CPU per delivery (target ≤ 0.5 at \
                     1,000 clients){}",
                    phase.name,
                    cf.cpu_per_delivery_us,
                    if n == 1000 {
                        format!(": {}", verdict(cf.cpu_per_delivery_us <= 0.5))
                    } else {
                        String::new()
                    }
                ),
                Pace::Delivery => println!(
                    "{n:>6} clients, {}: {:.3} µs server CPU per delivery, {:.1} frames per \
                     write (no target: a write carries at most {} frames, one per sender)",
                    phase.name, cf.cpu_per_delivery_us, cf.frames_per_write, o.senders
                ),
                Pace::Rate(_) => {
                    let bases: Vec<&Fig> = ["floor", "corepush@0"]
                        .iter()
                        .filter_map(|k| find(k, n)?.fanout.get(i))
                        .collect();
                    if bases.is_empty() {
                        continue;
                    }
                    // Per figure: the baseline with the best median, and how corepush's runs
                    // lie against its runs.
                    let judge = |f: fn(&Fig) -> (f64, &[f64])| {
                        let base = bases
                            .iter()
                            .min_by(|a, b| f(a).0.total_cmp(&f(b).0))
                            .expect("one baseline at least");
                        against(cf, base, f)
                    };
                    let p50 = judge(|f| (f.last_p50, &f.last_p50_runs));
                    let p99 = judge(|f| (f.last_p99, &f.last_p99_runs));
                    let figure = |(mine, best, shift): (f64, f64, Option<Shift>)| {
                        format!(
                            "{mine:.2} ms (best baseline {best:.2}{})",
                            difference(shift)
                        )
                    };
                    println!(
                        "{n:>6} clients, {}: last p50 {}, p99 {}: {}",
                        phase.name,
                        figure(p50),
                        figure(p99),
                        rate_verdict(&[p50, p99])
                    );
                    if let Some(twin) = twin(o)
                        && let Some(tf) = find(&twin, n).and_then(|t| t.fanout.get(i))
                    {
                        let (p50, p99) = (
                            against(cf, tf, |f| (f.last_p50, &f.last_p50_runs)),
                            against(cf, tf, |f| (f.last_p99, &f.last_p99_runs)),
                        );
                        println!(
                            "       control: the same window twice, corepush against {twin}: \
                             last p50 {}, p99 {}",
                            control(p50),
                            control(p99)
                        );
                    }
                }
            }
        }
    }
}

/// One figure `f` (median, runs) of corepush's `mine` against `base`: both medians, and
/// how far corepush's runs lie above the baseline's.
fn against(mine: &Fig, base: &Fig, f: fn(&Fig) -> (f64, &[f64])) -> (f64, f64, Option<Shift>) {
    let ((m, mine_runs), (b, base_runs)) = (f(mine), f(base));
    (m, b, run::shift(mine_runs, base_runs))
}

/// The server that runs corepush's own configuration a second time, when the run has it:
/// `corepush~MS` with the default window's ceiling. How far the two lie apart is how far
/// runs of one and the same server lie apart in this run, the yardstick for a tie.
fn twin(o: &Opts) -> Option<String> {
    if o.coalesce_ms.is_some() {
        return None;
    }
    let ms = corepush::FanoutWindow::default().longest().as_millis();
    Some(format!("corepush~{ms}"))
}

/// A control figure: corepush's median, its twin's, and the difference of their runs.
fn control((mine, twin, shift): (f64, f64, Option<Shift>)) -> String {
    format!("{mine:.2} against {twin:.2} ms{}", difference(shift))
}

/// ", difference … (95 % interval …)", or nothing with too few runs for an interval.
fn difference(shift: Option<Shift>) -> String {
    shift.map_or(String::new(), |s| {
        format!(
            ", difference {:+.2} ms (95 % interval {:+.2} to {:+.2})",
            s.estimate, s.low, s.high
        )
    })
}

/// An open loop's verdict from its figures' (corepush, best baseline, shift of corepush's
/// runs against that baseline's): met where every median is at most the baseline's; a tie
/// where one is above it but not beyond the runs' spread (the 95 % interval of the
/// difference reaches zero or below); not met where one is above it beyond that.
fn rate_verdict(figures: &[(f64, f64, Option<Shift>)]) -> &'static str {
    if figures.iter().all(|&(mine, best, _)| mine <= best) {
        "met"
    } else if figures
        .iter()
        .all(|&(mine, best, s)| mine <= best || s.is_some_and(|s| s.low <= 0.0))
    {
        "a tie: above the best baseline's median, not beyond the runs' spread"
    } else {
        "NOT met"
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// One table line, the first cell left-aligned.
fn line(widths: &[usize], cells: Vec<String>) {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (c, &w))| {
            if i == 0 {
                format!("{c:<w$}")
            } else {
                format!("{c:>w$}")
            }
        })
        .collect();
    println!("{}", padded.join(" "));
}
