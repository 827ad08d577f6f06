//! Log lines through the core: the reorder window, the engine's time while
//! logs are caught up on, deadlines, and a wall clock set back.

use jiff::{SignedDuration, Timestamp};

use super::*;

/// How far the wall clock may move back before the reorder window follows
/// it (NTP corrections are smaller; a clock set back by hand is not).
const CLOCK_BACK: SignedDuration = SignedDuration::from_mins(1);

/// A line as evaluated and stored: without the CR of a CRLF line end, and
/// on a log's first line without the byte order mark some Windows tools
/// write (as replay reads it).
fn held_text(text: &str, line: u64) -> &str {
    let text = text.strip_suffix('\r').unwrap_or(text);
    if line == 1 {
        text.strip_prefix('\u{feff}').unwrap_or(text)
    } else {
        text
    }
}

impl Core {
    /// The engine's time: the wall clock, or while logs are being caught up
    /// on the oldest of their newest events (replay's time); `None` while
    /// none of them has been read yet. A log that stopped sending
    /// (deleted, unreadable) holds time back for a minute at most.
    fn engine_time(&mut self, now: Timestamp) -> Option<Timestamp> {
        self.behind
            .retain(|_, (last, _)| now.duration_since(*last) < SignedDuration::from_mins(1));
        // The oldest of the newest events read from logs being caught up
        // on; nothing read from any of them yet: hold.
        let mut time = None;
        let mut unread = false;
        for (_, newest) in self.behind.values() {
            match newest {
                Some(n) => time = Some(time.map_or(*n, |t: Timestamp| t.min(*n))),
                None => unread = true,
            }
        }
        match time {
            Some(t) => Some(t.min(now)),
            None if unread => None,
            None => Some(now),
        }
    }

    /// Lines read from the log `key`, committed with `cursor` (the tailer's
    /// position after them). Returns the number of new violations.
    pub fn log_lines(
        &mut self,
        key: &str,
        lines: &[LogLine],
        cursor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.log_batch(key, lines, cursor, true, now)
    }

    /// As [`Core::log_lines`]; `at_end` says whether the batch reached the
    /// end of the log. While a log is being caught up on, the engine's time
    /// follows the events read, not the wall clock — as `replay` does — so a
    /// deadline is not fired before the reply in the next batch is read.
    pub fn log_batch(
        &mut self,
        key: &str,
        lines: &[LogLine],
        cursor: &str,
        at_end: bool,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.fresh()?;
        let mut w = Writes::default();
        let n = lines.len() as u64;
        let mut pushed = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let evidence = Evidence {
                path: l.file.clone(),
                line: u32::try_from(l.line).unwrap_or(u32::MAX),
            };
            let parsed = l
                .text
                .as_ref()
                .map_err(|reason| format!("{evidence}: {reason}"))
                .and_then(|text| {
                    let text = held_text(text, l.line);
                    if text.trim().is_empty() {
                        return Err(String::new());
                    }
                    parse_line(text, evidence).map_err(|m| m.to_string())
                });
            match parsed {
                Ok(ev) => {
                    let ts = ev.ts;
                    pushed.push((self.window.push(ev), ts, i));
                }
                Err(e) if e.is_empty() => {}
                Err(e) => {
                    self.malformed += 1;
                    tracing::warn!("{e}");
                    w.errors.push((key.to_string(), e));
                }
            }
        }
        // How far this log has been read: its newest event (a line that is
        // not an event says nothing about time).
        let mut newest = self.behind.get(key).and_then(|b| b.1);
        for &(_, ts, _) in &pushed {
            if ts <= now {
                newest = Some(newest.map_or(ts, |n: Timestamp| n.max(ts)));
            }
        }
        if at_end {
            self.behind.remove(key);
        } else {
            self.behind.insert(key.to_string(), (now, newest));
        }
        // This input's events, as read: stored only if it must be
        // (pending.rs); a malformed line's error is committed now, with the
        // cursor past it, so that a crash does not report it twice.
        let bytes = lines
            .iter()
            .map(|l| l.text.as_ref().map_or(0, String::len) + 24);
        let mut batch = BatchWriter::with_buffer(self.spare_buffer(), bytes.sum());
        let mut stamps = Vec::with_capacity(pushed.len());
        for &(id, ts, i) in &pushed {
            if let Ok(text) = &lines[i].text {
                let line = u32::try_from(lines[i].line).unwrap_or(u32::MAX);
                batch.push(id, &lines[i].file, line, held_text(text, lines[i].line));
                stamps.push(ts);
            }
        }
        let last = pushed.last().map_or(0, |p| p.0);
        let events = batch.finish().map(|(first, blob, _)| (first, last, blob));
        let own = self.pend(key, cursor, n, events, stamps, !w.errors.is_empty());
        self.advance(&mut w, now);
        self.settle(&mut w, false, true);
        // Still waiting: only counted (`complyd status` shows it read).
        if self.is_waiting(key, own) {
            w.waiting.push((key.to_string(), n));
        }
        self.commit(w, now, Some(own))
    }

    /// The clock passed a deadline (or just moved): release held events and
    /// fire what fell due.
    pub fn tick(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        self.fresh()?;
        let mut w = Writes::default();
        let released = self.advance(&mut w, now);
        self.settle(&mut w, false, true);
        if !released && self.nothing_to_commit(&w) {
            return Ok(0);
        }
        self.commit(w, now, None)
    }

    /// Whether an input that released no event changed nothing: then it
    /// has no transaction (the horizon it moved is written by the next).
    fn nothing_to_commit(&self, w: &Writes) -> bool {
        w.is_empty() && self.drained.is_empty() && !self.store.has_changes()
    }

    pub(super) fn restore_window(&mut self) -> Result<(), StoreError> {
        let r = self.store.restore_window()?;
        (self.window, self.batches) = (r.window, r.batches);
        (self.horizon, self.drained) = (r.horizon, r.drained);
        self.saved_horizon = r.horizon;
        self.clock = None;
        self.hold_pending_again();
        Ok(())
    }

    /// Releases events the window no longer holds and fires deadlines, all
    /// up to `now` minus the lateness. Returns whether an event was released.
    fn advance(&mut self, w: &mut Writes, now: Timestamp) -> bool {
        // Events leave the reorder window by the wall clock, in timestamp
        // order, and are evaluated at their own time.
        // The horizon does not follow a clock that moves back a little (it
        // releases nothing twice), which is what lets a restart tell the
        // stored events still held from those released (held.rs).
        let mut effects = Vec::new();
        let wall = now - self.lateness;
        let time = self.engine_time(now);
        let mut went_back = false;
        match self.horizon {
            Some(h) if h.duration_since(wall) > CLOCK_BACK => {
                self.clock_went_back(w, h, wall, now);
                went_back = true;
            }
            // While logs are being caught up on (at start, until the tailer
            // has read them all; a log behind), events leave the window
            // only up to the newest event read from each, as replay merges
            // logs: after a restart, an event stored in the window is not
            // judged before an earlier one of another log that the tailer
            // has yet to read again (pending.rs).
            h => {
                if let Some(t) = time
                    && h.is_none_or(|h| t - self.lateness > h)
                {
                    self.horizon = Some(t - self.lateness);
                }
            }
        }
        if self.horizon != self.saved_horizon {
            w.horizon = self.horizon;
        }
        let mut released = false;
        if let Some(horizon) = self.horizon {
            while let Some((id, ev)) = self.window.pop_through(horizon) {
                w.held_drop.extend(self.batches.release(id));
                self.release_pending(id);
                self.apply(&ev, w, &mut effects);
                released = true;
            }
        }
        if went_back {
            // Stored after the releases, so that the batch is exactly what
            // is still held (one written before them and released at once
            // stayed on disk, untracked, and was judged again after a
            // restart).
            if let Some((first, last, blob, count)) = held::rewrite(&self.window) {
                self.batches.add(first, last, count);
                w.held_batches.push((first, Arc::new(blob)));
            }
            // The rewrite holds the waiting batches' events too: their
            // cursors move past them.
            self.settle(w, true, false);
        }
        // Deadlines fire by the wall clock too — except while a log is being
        // caught up on: then only up to the newest event read from it, so a
        // deadline is not fired before the reply in the next batch is read.
        if let Some(time) = time {
            let horizon = time - self.lateness;
            if !self.store.started() && !w.started {
                effects.extend(engine::start(
                    &self.rules,
                    &self.env,
                    &mut self.store,
                    horizon,
                ));
                w.started = true;
            }
            let at = self.clock.map_or(horizon, |c| c.max(horizon));
            self.clock = Some(at);
            effects.extend(engine::evaluate(
                &self.rules,
                &self.env,
                &mut self.store,
                Input::Tick,
                at,
            ));
        }
        self.absorb(effects, w);
        released || went_back
    }

    /// The wall clock was set back (after a wrong step forward, say): the
    /// window and the rules' time follow it. Otherwise every event until
    /// real time caught up with the wrong one would be released at once,
    /// and evaluated at the wrong time — every new question overdue. What
    /// the step forward already fired stands.
    fn clock_went_back(&mut self, w: &mut Writes, from: Timestamp, to: Timestamp, now: Timestamp) {
        tracing::warn!(
            "the wall clock went back by {:#} (the reorder window's edge from {from} to {to}); \
             held events and deadlines follow the clock from now on",
            from.duration_since(to)
        );
        // What is stored past the new horizon must again be exactly what is
        // held: the events `advance` still holds once the new horizon has
        // released what it passes replace every stored batch.
        w.held_drop.extend(self.batches.clear());
        self.horizon = Some(to);
        self.clock = None;
        // A log being caught up on is waited for from now, not from the
        // wrong time.
        for b in self.behind.values_mut() {
            b.0 = b.0.min(now);
        }
    }

    fn apply(&mut self, ev: &Event, w: &mut Writes, effects: &mut Vec<Effect>) {
        if !self.store.started() && !w.started {
            effects.extend(engine::start(
                &self.rules,
                &self.env,
                &mut self.store,
                ev.ts,
            ));
            w.started = true;
        }
        // An event later than the window is evaluated at the clock's time.
        let at = self.clock.map_or(ev.ts, |c| c.max(ev.ts));
        self.clock = Some(at);
        effects.extend(engine::evaluate(
            &self.rules,
            &self.env,
            &mut self.store,
            Input::Event(ev),
            at,
        ));
    }

    fn absorb(&self, effects: Vec<Effect>, w: &mut Writes) {
        for e in effects {
            match e {
                Effect::Violation(v) => w.records.push(record::from_violation(&self.env, v)),
                Effect::Late {
                    rule,
                    subject,
                    due,
                    at,
                    ..
                } => w.late.push(LateMark {
                    fingerprint: record::violation_fingerprint(
                        &rule,
                        &subject,
                        Some(due),
                        due,
                        "",
                        None,
                    ),
                    subject,
                    at: engine::local_time(&self.env.calendar, at),
                    retracted: at <= due,
                }),
            }
        }
    }

    /// Events held in the reorder window.
    pub fn held(&self) -> usize {
        self.window.len()
    }
}
