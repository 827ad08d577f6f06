//! The reorder window: events written up to `allowed_lateness` out of
//! timestamp order are still evaluated in order. `replay` releases what is
//! older than the newest event minus the lateness; the daemon, what is older
//! than the wall clock minus the lateness.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::event::Event;

/// Events held until the horizon passes them, oldest first; ties keep
/// their arrival order.
#[derive(Debug, Default)]
pub struct ReorderWindow {
    held: BTreeMap<(Timestamp, u64), Event>,
    next_id: u64,
}

impl ReorderWindow {
    /// A window whose ids start at `first_id` (ids name persisted events).
    pub fn starting_at(first_id: u64) -> ReorderWindow {
        ReorderWindow {
            held: BTreeMap::new(),
            next_id: first_id,
        }
    }

    /// Holds `ev`; returns its id.
    pub fn push(&mut self, ev: Event) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.push_with_id(id, ev);
        id
    }

    /// Holds an event under a known id (one restored from the database).
    pub fn push_with_id(&mut self, id: u64, ev: Event) {
        self.next_id = self.next_id.max(id + 1);
        self.held.insert((ev.ts, id), ev);
    }

    /// The oldest held event at or before `horizon`, removed.
    pub fn pop_through(&mut self, horizon: Timestamp) -> Option<(u64, Event)> {
        let (&(ts, _), _) = self.held.first_key_value()?;
        if ts > horizon {
            return None;
        }
        self.held.pop_first().map(|((_, id), ev)| (id, ev))
    }

    /// Every held event, oldest first (at the end of a replay).
    pub fn pop(&mut self) -> Option<(u64, Event)> {
        self.held.pop_first().map(|((_, id), ev)| (id, ev))
    }

    /// Whether the event pushed as `id` at `ts` is still held.
    pub fn contains(&self, ts: Timestamp, id: u64) -> bool {
        self.held.contains_key(&(ts, id))
    }

    pub fn oldest(&self) -> Option<Timestamp> {
        self.held.first_key_value().map(|(&(ts, _), _)| ts)
    }

    pub fn ids(&self) -> impl Iterator<Item = (u64, &Event)> {
        self.held.iter().map(|(&(_, id), ev)| (id, ev))
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
