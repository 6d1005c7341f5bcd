//! Contract cases for queries and for what the facade changes on a connection by id: flags,
//! groups and data, seen by the connection's handler too.

use corepush::{Answer, ClientId};

use super::{Fixture, WORKERS, nobody, pick};

/// Clients per instance in `spread(2)`: two on each core loop.
const BLOCK: usize = 2 * WORKERS;

/// Sorted, for comparing listings whose order is not part of the contract.
fn sorted(mut ids: Vec<ClientId>) -> Vec<ClientId> {
    ids.sort_unstable();
    ids
}

/// The handler's `groups` reply, sorted (a connection lists its groups in join order).
fn handler_groups(reply: &str) -> Vec<String> {
    let mut v: Vec<String> = reply
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `exists`, `flag_exists`, `flag_clients`, `flag_of`, `connections` (sorted),
/// `connection_count`, `group_members` (sorted), `group_count`, `groups` and `groups_of`
/// answer for the clients of the instance asked, state set by the handlers included.
pub fn queries_answer_for_the_instances_clients(f: &dyn Fixture) {
    let d = f.start("queries_answer_for_the_instances_clients");
    let mut cs = d.spread(2);
    // Per instance: flag "a" on both core loops, "b" on one client, none on the last; the
    // groups joined in reverse name order, to see that listings sort them.
    let flag = |i: usize| match i % BLOCK {
        0 | 2 => Some("a"),
        1 => Some("b"),
        _ => None,
    };
    let groups = |i: usize| match i % BLOCK {
        0 => &["g2", "g1"][..],
        1 => &["g1"][..],
        2 => &["g2"][..],
        _ => &[][..],
    };
    for (i, c) in cs.iter_mut().enumerate() {
        if let Some(fl) = flag(i) {
            assert_eq!(c.ask(&format!("bind:{fl}")), "ok");
        }
        for g in groups(i) {
            assert_eq!(c.ask(&format!("join:{g}")), "ok");
        }
    }
    for via in d.vias() {
        let s = d.via(via);
        let all = d.seen(via, &cs);
        assert_eq!(s.connections(), all, "connections, sorted");
        assert_eq!(s.connection_count(), all.len());
        for fl in ["a", "b"] {
            let holders = d.seen(via, pick(&cs, |i| flag(i) == Some(fl)));
            assert_eq!(sorted(s.flag_clients(fl)), holders, "flag {fl}");
            assert_eq!(s.flag_exists(fl), !holders.is_empty(), "flag {fl}");
        }
        assert!(!s.flag_exists("nobody"));
        assert!(s.flag_clients("nobody").is_empty());
        let mut names = Vec::new();
        for g in ["g1", "g2"] {
            let members = d.seen(via, pick(&cs, |i| groups(i).contains(&g)));
            assert_eq!(s.group_members(g), members, "group {g}, sorted");
            assert_eq!(s.group_count(g), members.len(), "group {g}");
            if !members.is_empty() {
                names.push(g.to_owned());
            }
        }
        assert_eq!(s.groups(), names, "groups, sorted");
        assert_eq!(s.group_count("none"), 0);
        for (i, c) in cs.iter().enumerate() {
            let sees = d.sees(via, c);
            assert_eq!(s.exists(c.id), sees, "client {i}");
            let fl = flag(i).filter(|_| sees).map(str::to_owned);
            assert_eq!(s.flag_of(c.id), fl, "client {i}");
            let mut gs: Vec<String> = groups(i).iter().map(|g| (*g).to_owned()).collect();
            gs.sort();
            gs.retain(|_| sees);
            assert_eq!(s.groups_of(c.id), gs, "client {i}, sorted");
        }
    }
}

/// `bind`, `bind_nx` and `unbind` by id, through the client's instance, change the flag its
/// handler sees and the flag's sends and listings; the cluster form does so through every
/// instance, wherever the client is.
pub fn bind_by_id(f: &dyn Fixture) {
    let d = f.start("bind_by_id");
    let mut cs = d.spread(1);
    let yes = d.acts_by_id();
    let shown = |flag: &str| if yes { flag.to_owned() } else { "none".into() };
    for (i, c) in cs.iter_mut().enumerate() {
        let home = d.home(c);
        let s = d.via(home);
        let own = format!("user-{i}");
        assert_eq!(s.bind(c.id, &own), yes);
        assert_eq!(c.ask("flag"), shown(&own));
        assert_eq!(s.flag_of(c.id), yes.then(|| own.clone()));
        // A second bind replaces the first.
        assert_eq!(s.bind(c.id, "shared"), yes);
        assert_eq!(c.ask("flag"), shown("shared"));
        assert!(!s.flag_exists(&own));
        assert_eq!(s.send_raw_by_flag("x", own.as_str()).unwrap(), 0);
    }
    for via in d.vias() {
        let holders = d.seen(via, &cs);
        assert_eq!(sorted(d.via(via).flag_clients("shared")), holders);
    }
    // Exclusive binding, between two clients of instance 0 on different core loops.
    let s = d.via(0);
    let (a, b) = (cs[0].id, cs[1].id);
    assert_eq!(s.bind_nx(a, "solo"), yes);
    assert!(!s.bind_nx(b, "solo"), "another connection holds it");
    assert_eq!(
        cs[1].ask("flag"),
        shown("shared"),
        "a refused bind_nx changes nothing"
    );
    assert_eq!(s.bind_nx(a, "solo"), yes, "it holds the flag already");
    assert_eq!(s.unbind(a), yes.then(|| "solo".to_owned()));
    assert_eq!(s.unbind(a), None);
    assert_eq!(cs[0].ask("flag"), "none");
    assert!(!s.flag_exists("solo"));
    assert_eq!(s.bind_nx(b, "solo"), yes, "free again");
    assert_eq!(cs[1].ask("flag"), shown("solo"));
    // Ids no connection has.
    assert!(!s.bind(nobody(), "x"));
    assert!(!s.bind_nx(nobody(), "x"));
    assert_eq!(s.unbind(nobody()), None);
    assert!(!s.flag_exists("x"));
    // The cluster form acts on the client wherever it is, through every instance.
    let acts = d.delivers();
    let done = |value: bool| Answer {
        value,
        complete: true,
    };
    for via in d.vias() {
        let cluster = d.via(via).cluster();
        for (i, c) in cs.iter_mut().enumerate() {
            let flag = format!("c{via}-{i}");
            assert_eq!(cluster.bind(c.id, &flag).unwrap(), done(acts));
            assert_eq!(
                c.ask("flag"),
                if acts { flag.clone() } else { "none".into() }
            );
            let of = cluster.flag_of(c.id).unwrap();
            assert_eq!(of.value, acts.then(|| flag.clone()));
            assert_eq!(
                cluster.flag_clients(&flag).unwrap().value.len(),
                usize::from(acts)
            );
            let gone = cluster.unbind(c.id).unwrap();
            assert_eq!(gone.value, acts.then_some(flag));
            assert_eq!(c.ask("flag"), "none");
        }
    }
    assert_eq!(s.cluster().bind(nobody(), "x").unwrap(), done(false));
}

/// `join` and `leave` by id, through the client's instance, change the groups its handler
/// sees and the groups' sends and listings; the cluster form does so through every instance,
/// wherever the client is.
pub fn join_and_leave_by_id(f: &dyn Fixture) {
    let d = f.start("join_and_leave_by_id");
    let mut cs = d.spread(1);
    let yes = d.acts_by_id();
    let names = |v: &[&str]| -> Vec<String> {
        if yes {
            v.iter().map(|g| (*g).to_owned()).collect()
        } else {
            Vec::new()
        }
    };
    for c in cs.iter_mut() {
        let home = d.home(c);
        let s = d.via(home);
        assert_eq!(s.join(c.id, "beta"), yes);
        assert_eq!(s.join(c.id, "alpha"), yes);
        assert_eq!(s.join(c.id, "alpha"), yes, "already a member");
        assert_eq!(handler_groups(&c.ask("groups")), names(&["alpha", "beta"]));
        assert_eq!(s.groups_of(c.id), names(&["alpha", "beta"]));
        assert!(!s.leave(c.id, "never"));
        assert_eq!(s.leave(c.id, "beta"), yes);
        assert!(!s.leave(c.id, "beta"), "no longer a member");
        assert_eq!(handler_groups(&c.ask("groups")), names(&["alpha"]));
        assert_eq!(s.groups_of(c.id), names(&["alpha"]));
    }
    for via in d.vias() {
        let s = d.via(via);
        let members = d.seen(via, &cs);
        assert_eq!(s.group_members("alpha"), members);
        assert!(s.group_members("beta").is_empty());
        assert_eq!(
            s.groups(),
            if members.is_empty() {
                vec![]
            } else {
                names(&["alpha"])
            }
        );
        let sent = s.send_raw_to_group(["alpha", "beta"], "a").unwrap();
        // Members only where the joins acted.
        assert_eq!(sent, if yes { d.expected(via, &cs) } else { 0 });
        for c in cs.iter_mut() {
            if yes {
                d.read_text(c, "a");
            }
            d.quiet(via, c);
        }
    }
    let s = d.via(0);
    assert!(!s.join(nobody(), "alpha"));
    assert!(!s.leave(nobody(), "alpha"));
    assert!(s.groups_of(nobody()).is_empty());
    // The cluster form acts on the client wherever it is, through every instance.
    let acts = d.delivers();
    let done = |value: bool| Answer {
        value,
        complete: true,
    };
    for via in d.vias() {
        let cluster = d.via(via).cluster();
        let group = format!("c{via}");
        for c in cs.iter_mut() {
            assert_eq!(cluster.join(c.id, &group).unwrap(), done(acts));
            // Under Gateway the plain joins above did not act.
            let mut want = if yes { names(&["alpha"]) } else { Vec::new() };
            if acts {
                want.push(group.clone());
                want.sort();
            }
            assert_eq!(handler_groups(&c.ask("groups")), want);
            assert_eq!(cluster.groups_of(c.id).unwrap().value, want);
        }
        let members = cluster.group_members(&group).unwrap();
        assert_eq!(members.value.len(), if acts { cs.len() } else { 0 });
        assert!(members.complete);
        for c in cs.iter_mut() {
            assert_eq!(cluster.leave(c.id, &group).unwrap(), done(acts));
            assert_eq!(cluster.leave(c.id, &group).unwrap(), done(false));
        }
        assert!(cluster.group_members(&group).unwrap().value.is_empty());
    }
}

/// `set_data`, `data` and `remove_data` by id, through the client's instance, share one
/// store with the connection's handler; `data` of another type is `None`. The cluster form
/// stores and reads JSON on the client through every instance, wherever it is.
pub fn data_by_id(f: &dyn Fixture) {
    let d = f.start("data_by_id");
    let mut cs = d.spread(1);
    let yes = d.acts_by_id();
    let some = |v: &str| yes.then(|| v.to_owned());
    for c in cs.iter_mut() {
        let home = d.home(c);
        let s = d.via(home);
        assert_eq!(s.set_data(c.id, "name", "ada".to_owned()), yes);
        assert_eq!(
            c.ask("get:name"),
            some("ada").unwrap_or_else(|| "none".into())
        );
        assert_eq!(s.data::<String>(c.id, "name"), some("ada"));
        assert_eq!(s.data::<u32>(c.id, "name"), None, "another type");
        assert_eq!(s.set_data(c.id, "n", 7u32), yes);
        assert_eq!(s.data::<u32>(c.id, "n"), yes.then_some(7));
        // What the handler stores, the facade reads; and the other way round, overwritten.
        assert_eq!(c.ask("set:note:hi"), "ok");
        assert_eq!(s.data::<String>(c.id, "note"), some("hi"));
        assert_eq!(s.set_data(c.id, "note", "bye".to_owned()), yes);
        assert_eq!(
            c.ask("get:note"),
            some("bye").unwrap_or_else(|| "hi".into())
        );
        assert_eq!(s.remove_data(c.id, "name"), yes);
        assert!(!s.remove_data(c.id, "name"), "already removed");
        assert_eq!(s.data::<String>(c.id, "name"), None);
        assert_eq!(c.ask("get:name"), "none");
    }
    let s = d.via(0);
    assert!(!s.set_data(nobody(), "k", 1u8));
    assert_eq!(s.data::<u8>(nobody(), "k"), None);
    assert!(!s.remove_data(nobody(), "k"));
    // The cluster form stores JSON on the client wherever it is, through every instance.
    let acts = d.delivers();
    let done = |value: bool| Answer {
        value,
        complete: true,
    };
    for via in d.vias() {
        let cluster = d.via(via).cluster();
        for c in cs.iter() {
            let value = serde_json::json!({"via": via});
            assert_eq!(cluster.set_data(c.id, "j", &value).unwrap(), done(acts));
            let got = cluster.data::<serde_json::Value>(c.id, "j").unwrap();
            assert_eq!(got.value, acts.then_some(value));
            assert_eq!(cluster.remove_data(c.id, "j").unwrap(), done(acts));
            assert_eq!(cluster.remove_data(c.id, "j").unwrap(), done(false));
        }
    }
    assert_eq!(
        s.cluster().set_data(nobody(), "k", &1).unwrap(),
        done(false)
    );
}
