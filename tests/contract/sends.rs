//! Contract cases for sends: by id, by flag, to groups, to everyone, with exclusions, and the
//! order of one thread's sends.

use corepush::{ClientId, Raw};
use serde_json::json;

use super::{Fixture, WORKERS, beside, nobody, pick};

/// Clients per instance in `spread(2)`: two on each core loop.
const BLOCK: usize = 2 * WORKERS;

/// `send` (encoded) to one id reaches that client, on every core loop and instance, through
/// every instance; the counted form counts it wherever it is.
pub fn send_by_id(f: &dyn Fixture) {
    let d = f.start("send_by_id");
    let mut cs = d.spread(1);
    for via in d.vias() {
        for (i, c) in cs.iter_mut().enumerate() {
            let data = json!({"via": via, "to": i});
            let sent = d.via(via).send(&data, c.id).unwrap();
            assert_eq!(sent, d.expected(via, [&*c]), "send to client {i}");
            d.read_json(c, &data);
            let counted = json!({"via": via, "to": i, "counted": true});
            d.assert_counted(d.via(via).cluster().send(&counted, c.id), [&*c]);
            d.read_json(c, &counted);
        }
    }
}

/// `send` to several ids reaches each once, an id named twice included.
pub fn send_to_several_ids(f: &dyn Fixture) {
    let d = f.start("send_to_several_ids");
    // Client i on instance i % n, so that the ids span the instances.
    let mut cs = d.connect(2 * d.instances.len() + 1);
    let ids: Vec<ClientId> = cs.iter().map(|c| c.id).collect();
    for via in d.vias() {
        let data = json!({"via": via});
        assert_eq!(d.via(via).send(&data, &ids).unwrap(), d.expected(via, &cs));
        let twice = [cs[0].id, cs[1].id, cs[0].id];
        let sent = d.via(via).send_raw("twice", twice).unwrap();
        assert_eq!(sent, d.expected(via, [&cs[0], &cs[1]]));
        d.assert_counted(d.via(via).cluster().send(&data, &ids), &cs);
        let counted = d.via(via).cluster().send_raw("counted", twice);
        d.assert_counted(counted, [&cs[0], &cs[1]]);
        for (i, c) in cs.iter_mut().enumerate() {
            d.read_json(c, &data);
            if i < 2 {
                d.read_text(c, "twice");
            }
            d.read_json(c, &data);
            if i < 2 {
                d.read_text(c, "counted");
            }
            d.quiet(via, c);
        }
    }
}

/// `send_raw` sends text as a text message and bytes as a binary one, to one id or several.
pub fn send_raw_text_and_binary(f: &dyn Fixture) {
    let d = f.start("send_raw_text_and_binary");
    let mut cs = d.spread(1);
    let ids: Vec<ClientId> = cs.iter().map(|c| c.id).collect();
    let bytes = [0u8, 1, 0x80, 0xfe, 0xff];
    for via in d.vias() {
        let s = d.via(via);
        for c in cs.iter_mut() {
            let one = d.expected(via, [&*c]);
            assert_eq!(s.send_raw("text", c.id).unwrap(), one);
            assert_eq!(s.send_raw(bytes.to_vec(), c.id).unwrap(), one);
            d.read_text(c, "text");
            d.read_binary(c, &bytes);
        }
        let all = d.expected(via, &cs);
        assert_eq!(s.send_raw(Raw::text("many"), &ids).unwrap(), all);
        assert_eq!(s.send_raw(Raw::binary(&bytes[..]), &ids).unwrap(), all);
        // Bytes that happen to be UTF-8 are still a binary message.
        assert_eq!(s.send_raw(b"utf8", &ids).unwrap(), all);
        for c in cs.iter_mut() {
            d.read_text(c, "many");
            d.read_binary(c, &bytes);
            d.read_binary(c, b"utf8");
        }
    }
}

/// Ids no connection has count 0 for every call, alone or beside connected ones, and reach
/// nobody: the top id, and ids routed to a live core loop whose serial was never issued.
pub fn unknown_ids_count_zero(f: &dyn Fixture) {
    let d = f.start("unknown_ids_count_zero");
    let mut cs = d.spread(1);
    let strangers: Vec<ClientId> = std::iter::once(nobody())
        .chain(cs.iter().map(|c| beside(c.id)))
        .collect();
    for via in d.vias() {
        let s = d.via(via);
        for &x in &strangers {
            assert_eq!(s.send(&1, x).unwrap(), 0, "{x}");
            assert_eq!(s.send_raw("x", x).unwrap(), 0, "{x}");
            assert_eq!(s.close(x).unwrap(), 0, "{x}");
            assert!(!s.exists(x), "{x}");
            assert_eq!(s.flag_of(x), None);
            assert!(s.groups_of(x).is_empty());
        }
        assert_eq!(s.send_raw("x", &strangers).unwrap(), 0);
        d.assert_counted(s.cluster().send_raw("x", &strangers), []);
        let mut mixed = strangers.clone();
        mixed.push(cs[0].id);
        let sent = s.send_raw("mixed", &mixed).unwrap();
        assert_eq!(sent, d.expected(via, [&cs[0]]));
        d.read_text(&mut cs[0], "mixed");
        for c in cs.iter_mut() {
            d.quiet(via, c);
        }
    }
}

/// `send_by_flag` / `send_raw_by_flag` reach every connection bound to the flag, on both core
/// loops of every instance, and no other.
pub fn send_by_flag_reaches_every_holder(f: &dyn Fixture) {
    let d = f.start("send_by_flag_reaches_every_holder");
    let mut cs = d.spread(2);
    // Three of each instance's four clients, on both core loops, hold the flag.
    let holds = |i: usize| i % BLOCK != BLOCK - 1;
    for (i, c) in cs.iter_mut().enumerate() {
        if holds(i) {
            assert_eq!(c.ask("bind:user"), "ok");
        }
    }
    for via in d.vias() {
        let s = d.via(via);
        let data = json!({"user": via});
        let n = d.expected(via, pick(&cs, holds));
        assert_eq!(s.send_by_flag(&data, "user").unwrap(), n);
        assert_eq!(s.send_raw_by_flag(vec![via as u8], "user").unwrap(), n);
        d.assert_counted(s.cluster().send_by_flag(&data, "user"), pick(&cs, holds));
        for (i, c) in cs.iter_mut().enumerate() {
            if holds(i) {
                d.read_json(c, &data);
                d.read_binary(c, &[via as u8]);
                d.read_json(c, &data);
            }
            d.quiet(via, c);
        }
    }
}

/// A flag named twice, and several flags in one call, reach each connection once.
pub fn flags_named_twice_deliver_once(f: &dyn Fixture) {
    let d = f.start("flags_named_twice_deliver_once");
    let mut cs = d.spread(2);
    // Per instance: "u" on both core loops, "v" on one, and one client without a flag.
    let flag = |i: usize| match i % BLOCK {
        0 | 2 => Some("u"),
        1 => Some("v"),
        _ => None,
    };
    for (i, c) in cs.iter_mut().enumerate() {
        if let Some(fl) = flag(i) {
            assert_eq!(c.ask(&format!("bind:{fl}")), "ok");
        }
    }
    for via in d.vias() {
        let s = d.via(via);
        let sent = s
            .send_raw_by_flag("once", ["u", "v", "u", "nobody"])
            .unwrap();
        assert_eq!(sent, d.expected(via, pick(&cs, |i| flag(i).is_some())));
        let v = vec!["v".to_owned(), "v".to_owned()];
        let sent = s.send_by_flag(&json!("v"), v).unwrap();
        assert_eq!(sent, d.expected(via, pick(&cs, |i| flag(i) == Some("v"))));
        for (i, c) in cs.iter_mut().enumerate() {
            if flag(i).is_some() {
                d.read_text(c, "once");
            }
            if flag(i) == Some("v") {
                d.read_text(c, "\"v\"");
            }
            d.quiet(via, c);
        }
    }
}

/// A flag nobody holds — never bound, unbound, or an empty list — counts 0 and reaches nobody.
pub fn unknown_flags_count_zero(f: &dyn Fixture) {
    let d = f.start("unknown_flags_count_zero");
    let mut cs = d.spread(1);
    assert_eq!(cs[0].ask("bind:gone"), "ok");
    assert_eq!(cs[0].ask("unbind"), "gone");
    for via in d.vias() {
        let s = d.via(via);
        assert_eq!(s.send_by_flag(&1, "nobody").unwrap(), 0);
        assert_eq!(s.send_raw_by_flag("x", ["nobody", "gone"]).unwrap(), 0);
        assert_eq!(s.send_raw_by_flag("x", Vec::<String>::new()).unwrap(), 0);
        assert_eq!(s.close_by_flag("gone").unwrap(), 0);
        assert!(!s.flag_exists("gone"));
        assert!(s.flag_clients("gone").is_empty());
        for c in cs.iter_mut() {
            d.quiet(via, c);
        }
    }
}

/// A send to several groups reaches each member once, however many of the groups it is in.
pub fn send_to_groups_counts_each_member_once(f: &dyn Fixture) {
    let d = f.start("send_to_groups_counts_each_member_once");
    let mut cs = d.spread(2);
    // Per instance: one client in "a", one in "a" and "b", one in "b", one in none.
    let groups = |i: usize| match i % BLOCK {
        0 => &["a"][..],
        1 => &["a", "b"][..],
        2 => &["b"][..],
        _ => &[][..],
    };
    for (i, c) in cs.iter_mut().enumerate() {
        for g in groups(i) {
            assert_eq!(c.ask(&format!("join:{g}")), "ok");
        }
    }
    let member = |i: usize, g: &str| groups(i).contains(&g);
    for via in d.vias() {
        let s = d.via(via);
        let data = json!({"groups": via});
        let sent = s.send_to_group(["a", "b"], &data).unwrap();
        assert_eq!(sent, d.expected(via, pick(&cs, |i| !groups(i).is_empty())));
        let sent = s.send_raw_to_group("a", vec![via as u8]).unwrap();
        assert_eq!(sent, d.expected(via, pick(&cs, |i| member(i, "a"))));
        let sent = s.send_raw_to_group(["b", "b"], "bb").unwrap();
        assert_eq!(sent, d.expected(via, pick(&cs, |i| member(i, "b"))));
        let counted = s.cluster().send_raw_to_group(["a", "b", "a"], "counted");
        d.assert_counted(counted, pick(&cs, |i| !groups(i).is_empty()));
        for (i, c) in cs.iter_mut().enumerate() {
            if !groups(i).is_empty() {
                d.read_json(c, &data);
            }
            if member(i, "a") {
                d.read_binary(c, &[via as u8]);
            }
            if member(i, "b") {
                d.read_text(c, "bb");
            }
            if !groups(i).is_empty() {
                d.read_text(c, "counted");
            }
            d.quiet(via, c);
        }
    }
}

/// A client that left a group gets no more of its sends.
pub fn leave_takes_a_client_out_of_group_sends(f: &dyn Fixture) {
    let d = f.start("leave_takes_a_client_out_of_group_sends");
    let mut cs = d.spread(1);
    for c in cs.iter_mut() {
        assert_eq!(c.ask("join:room"), "ok");
    }
    assert_eq!(cs[0].ask("leave:room"), "true");
    assert_eq!(cs[0].ask("leave:room"), "false");
    for via in d.vias() {
        let sent = d.via(via).send_raw_to_group("room", "r").unwrap();
        assert_eq!(sent, d.expected(via, &cs[1..]));
        for c in cs[1..].iter_mut() {
            d.read_text(c, "r");
        }
        for c in cs.iter_mut() {
            d.quiet(via, c);
        }
    }
}

/// A group without members — never joined, emptied, or an empty list — counts 0.
pub fn empty_groups_count_zero(f: &dyn Fixture) {
    let d = f.start("empty_groups_count_zero");
    let mut cs = d.spread(1);
    assert_eq!(cs[0].ask("join:brief"), "ok");
    assert_eq!(cs[0].ask("leave:brief"), "true");
    for via in d.vias() {
        let s = d.via(via);
        assert_eq!(s.send_to_group("never", &1).unwrap(), 0);
        assert_eq!(s.send_raw_to_group(["brief", "never"], "x").unwrap(), 0);
        assert_eq!(s.send_to_group(Vec::<String>::new(), &1).unwrap(), 0);
        assert_eq!(s.group_count("brief"), 0);
        assert!(s.group_members("brief").is_empty());
        assert!(!s.groups().iter().any(|g| g == "brief"));
        for c in cs.iter_mut() {
            d.quiet(via, c);
        }
    }
}

/// `send_to_all` / `send_raw_to_all` reach every client of every core loop and instance.
pub fn send_to_all_reaches_every_client(f: &dyn Fixture) {
    let d = f.start("send_to_all_reaches_every_client");
    let mut cs = d.spread(2);
    for via in d.vias() {
        let s = d.via(via);
        let data = json!({"all": via});
        let n = d.expected(via, &cs);
        assert_eq!(s.send_to_all(&data).unwrap(), n);
        assert_eq!(s.send_raw_to_all(vec![via as u8, 0]).unwrap(), n);
        d.assert_counted(s.cluster().send_to_all(&data), &cs);
        for c in cs.iter_mut() {
            d.read_json(c, &data);
            d.read_binary(c, &[via as u8, 0]);
            d.read_json(c, &data);
            d.quiet(via, c);
        }
    }
}

/// A handle made by `except(ids)` skips those clients on sends to all, by flag and to groups,
/// and leaves them out of its listings, calls by id and closes; exclusions accumulate.
pub fn except_skips_clients_on_all_flag_and_group_sends(f: &dyn Fixture) {
    let d = f.start("except_skips_clients_on_all_flag_and_group_sends");
    let mut cs = d.spread(2);
    for c in cs.iter_mut() {
        assert_eq!(c.ask("bind:everyone"), "ok");
        assert_eq!(c.ask("join:g"), "ok");
    }
    // The first client of each core loop of each instance is excluded.
    let out = |i: usize| i % 2 == 0;
    let excluded: Vec<ClientId> = pick(&cs, out).map(|c| c.id).collect();
    // One more is excluded by a second `except`.
    let more = cs[1].id;
    for via in d.vias() {
        let h = d.via(via).except(&excluded);
        let n = d.expected(via, pick(&cs, |i| !out(i)));
        let data = json!({"except": via});
        assert_eq!(h.send_raw_to_all("all").unwrap(), n);
        assert_eq!(h.send_to_all(&data).unwrap(), n);
        assert_eq!(h.send_raw_by_flag("flag", "everyone").unwrap(), n);
        assert_eq!(h.send_by_flag(&data, ["everyone"]).unwrap(), n);
        assert_eq!(h.send_raw_to_group("g", "group").unwrap(), n);
        assert_eq!(h.send_to_group(["g"], &data).unwrap(), n);
        let fewer = h.except(more).send_raw_to_all("fewer").unwrap();
        assert_eq!(fewer, d.expected(via, pick(&cs, |i| !out(i) && i != 1)));
        let counted = h
            .except(more)
            .cluster()
            .send_raw_by_flag("counted", "everyone");
        d.assert_counted(counted, pick(&cs, |i| !out(i) && i != 1));
        // For the handle, an excluded client does not exist: left out of listings and
        // counts, and a call naming it answers as for a client that is not connected.
        let kept = d.seen(via, pick(&cs, |i| !out(i)));
        assert_eq!(h.connections(), kept);
        assert_eq!(h.connection_count(), kept.len());
        assert_eq!(h.group_members("g"), kept);
        let mut holders = h.flag_clients("everyone");
        holders.sort_unstable();
        assert_eq!(holders, kept);
        for &x in &excluded {
            assert!(!h.exists(x));
            assert_eq!(h.flag_of(x), None);
            assert!(h.groups_of(x).is_empty());
            assert_eq!(h.send_raw("x", x).unwrap(), 0);
            assert!(!h.bind(x, "z"));
            assert_eq!(h.close(x).unwrap(), 0);
        }
        for (i, c) in cs.iter_mut().enumerate() {
            if !out(i) {
                d.read_text(c, "all");
                d.read_json(c, &data);
                d.read_text(c, "flag");
                d.read_json(c, &data);
                d.read_text(c, "group");
                d.read_json(c, &data);
                if i != 1 {
                    d.read_text(c, "fewer");
                    d.read_text(c, "counted");
                }
            }
            d.quiet(via, c);
        }
    }
}

/// One thread's sends to a connection arrive in the order of the calls, whichever way they
/// were sent: by ids, by flag, to a group, to everyone, encoded or raw.
pub fn one_threads_sends_arrive_in_call_order(f: &dyn Fixture) {
    const N: usize = 160;
    let d = f.start("one_threads_sends_arrive_in_call_order");
    let mut cs = d.spread(1);
    let mut flags = Vec::new();
    for (i, c) in cs.iter_mut().enumerate() {
        flags.push(format!("f{i}"));
        assert_eq!(c.ask(&format!("bind:f{i}")), "ok");
        assert_eq!(c.ask("join:g"), "ok");
    }
    let ids: Vec<ClientId> = cs.iter().map(|c| c.id).collect();
    for via in d.vias() {
        let s = d.via(via);
        let n = d.expected(via, &cs);
        for k in 0..N {
            // An encoded number reads as the same text as the raw one.
            let raw = k.to_string();
            let sent = match k % 8 {
                0 => s.send_raw(&raw, &ids),
                1 => s.send(&k, &ids),
                2 => s.send_raw_by_flag(&raw, &flags),
                3 => s.send_by_flag(&k, &flags),
                4 => s.send_raw_to_group("g", &raw),
                5 => s.send_to_group("g", &k),
                6 => s.send_raw_to_all(&raw),
                _ => s.send_to_all(&k),
            };
            assert_eq!(sent.unwrap(), n, "message {k}");
        }
        for c in cs.iter_mut() {
            for k in 0..N {
                d.read_text(c, &k.to_string());
            }
            d.quiet(via, c);
        }
    }
}
