//! The history of the Local backend: a ring per kept name in this process, whose epoch is
//! made when the server starts (so a restart gives a new one).
//!
//! # The seam
//!
//! Each name's ring has its own lock. A push to kept names locks their rings (sorted, so two
//! pushes never wait on each other in a circle), appends the shared frame to each, and hands
//! the push to the delivery door — all before it unlocks. A recovery locks the name's ring,
//! makes the client a member, reads the kept messages after its position and hands each to
//! the client through the same door, then unlocks. So for every message either the push
//! ran first (the client was not a member when the push counted its receivers, and the
//! message is in the ring the recovery reads) or the recovery ran first (the client is a
//! member when the push counts, and the message is not yet in the ring): exactly once. The
//! door keeps the order in which commands were handed over, so the missed messages, handed
//! over before the ring unlocks, are written before any later push of the stream.
//!
//! Lock order: a ring, then the registry (through the door); nothing takes a ring while it
//! holds the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::ring::Ring;
use super::{HistoryConfig, Keeper, Kind, Recovery, StreamPosition, covers, new_epoch};
use crate::delivery::Delivery;
use crate::error::Result;
use crate::id::ClientId;
use crate::target::{Payload, Scope, Target};

/// The Local backend's history (see the module docs).
#[derive(Debug)]
pub(crate) struct LocalKeeper {
    config: HistoryConfig,
    epoch: String,
    delivery: Arc<Delivery>,
    streams: Mutex<HashMap<(Kind, Box<str>), Stream>>,
}

/// One name's ring, locked on its own.
type Stream = Arc<Mutex<Ring>>;

impl LocalKeeper {
    pub(crate) fn new(config: HistoryConfig, delivery: Arc<Delivery>) -> Self {
        LocalKeeper {
            config,
            epoch: new_epoch(),
            delivery,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// A kept name's ring, made on first use; `None` for a name not kept.
    fn stream(&self, kind: Kind, name: &str) -> Option<Stream> {
        let bound = self.config.bound(kind, name)?;
        let mut streams = self.streams.lock();
        Some(
            streams
                .entry((kind, name.into()))
                .or_insert_with(|| Arc::new(Mutex::new(Ring::new(bound))))
                .clone(),
        )
    }

    fn keep_and_push(
        &self,
        target: &Target,
        rings: &[Stream],
        payload: Payload<'_>,
        scope: Scope<'_>,
    ) -> Result<usize> {
        self.delivery.check_running()?;
        let frame = self.delivery.frame(payload)?;
        let mut guards: Vec<_> = rings.iter().map(|r| r.lock()).collect();
        let now = Instant::now();
        for ring in &mut guards {
            ring.append(frame.clone(), now);
        }
        self.delivery.push_frame(target.clone(), frame, scope)
    }
}

impl Keeper for LocalKeeper {
    fn push(
        &self,
        target: &Target,
        payload: Payload<'_>,
        scope: Scope<'_>,
    ) -> Option<Result<usize>> {
        let (kind, names) = super::kept_target(target, scope)?;
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        let rings: Vec<_> = names
            .into_iter()
            .filter_map(|n| self.stream(kind, n))
            .collect();
        if rings.is_empty() {
            return None;
        }
        Some(self.keep_and_push(target, &rings, payload, scope))
    }

    fn recover(
        &self,
        id: ClientId,
        kind: Kind,
        name: &str,
        since: Option<&StreamPosition>,
        scope: Scope<'_>,
    ) -> Result<Recovery> {
        let ring = self.stream(kind, name);
        let mut ring = ring.as_ref().map(|r| r.lock());
        let is_member = match kind {
            Kind::Group => self.delivery.join(id, name, scope),
            Kind::Flag => self.delivery.bind(id, name, false, scope),
        };
        let mut recovery = Recovery {
            recovered: false,
            missed: 0,
            position: StreamPosition {
                epoch: self.epoch.clone(),
                offset: 0,
            },
            is_member,
        };
        let Some(ring) = ring.as_mut() else {
            return Ok(recovery);
        };
        ring.expire(Instant::now());
        recovery.position.offset = ring.last();
        let Some(since) = since else {
            return Ok(recovery);
        };
        if !is_member || !covers(since, &self.epoch, ring.last(), ring.first()) {
            return Ok(recovery);
        }
        let to = Target::Clients(vec![id]);
        for entry in ring.after(since.offset) {
            self.delivery
                .push_frame(to.clone(), entry.frame.clone(), scope)?;
            recovery.missed += 1;
        }
        recovery.recovered = true;
        Ok(recovery)
    }

    fn position(&self, kind: Kind, name: &str) -> Result<StreamPosition> {
        let offset = self.stream(kind, name).map_or(0, |r| r.lock().last());
        Ok(StreamPosition {
            epoch: self.epoch.clone(),
            offset,
        })
    }
}
