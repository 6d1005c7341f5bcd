//! Contract cases for recovery where no history is kept: every backend joins or binds as
//! the plain call does and answers "not recovered", never a wrong "recovered".

use corepush::StreamPosition;

use super::Fixture;

pub fn recovery_without_history_joins_and_never_recovers(f: &dyn Fixture) {
    let d = f.start("recovery_without_history_joins_and_never_recovers");
    let mut cs = d.spread(1);
    let yes = d.acts_by_id();
    let foreign = StreamPosition {
        epoch: "some epoch".into(),
        offset: 3,
    };
    for c in cs.iter_mut() {
        let s = d.via(d.home(c));
        let r = s.join_recovering(c.id, "gamma", Some(&foreign)).unwrap();
        assert!(!r.recovered && r.missed == 0, "{r:?}");
        assert_eq!(r.is_member, yes);
        assert_eq!(
            r.position,
            StreamPosition {
                epoch: String::new(),
                offset: 0
            }
        );
        let r = s.bind_recovering(c.id, "delta", None).unwrap();
        assert!(!r.recovered);
        assert_eq!(r.is_member, yes);
        assert_eq!(s.group_position("gamma").unwrap().offset, 0);
        assert_eq!(s.flag_position("delta").unwrap().offset, 0);
    }
    for via in d.vias() {
        let sent = d.via(via).send_raw_to_group("gamma", "g").unwrap();
        assert_eq!(sent, if yes { d.expected(via, &cs) } else { 0 });
        for c in cs.iter_mut() {
            if yes {
                d.read_text(c, "g");
            }
            d.quiet(via, c);
        }
    }
}
