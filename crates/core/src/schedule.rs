//! When `SELLER_PERFORMANCE_NOTIFICATIONS` are due: `ALARMS` daily at 6:00 AM and `REPORT` every
//! Monday at 5:00 AM, Pacific time (America/Los_Angeles), as `seeds/000_*` says.
//!
//! The times are wall-clock times in Los Angeles, so the UTC instant moves by an hour across the
//! daylight-saving changes (6:00 AM PT is 14:00 UTC in winter, 13:00 UTC in summer). Both runs sit
//! well away from the 2:00 AM transition, so they always exist exactly once per day.
//!
//! The time zone rules come from the tzdb bundled into the binary (jiff's `tzdb-bundle-always`),
//! so the schedule is the same on a machine without `/usr/share/zoneinfo`.
//!
//! A scheduler built on this keeps, per partner and notification type, the scheduled time of the
//! last run it sent, and asks [`PerformanceSchedule::runs_due`] what to send now: at most one run,
//! the most recent one missed, so a hub that was down for three days sends one `ALARMS`, not
//! three. [`run_key`] names a run (partner + type + scheduled time) so two nodes can agree that it
//! was sent once. The payload of a run is computed with `as_of` = its scheduled time, so every
//! node computes the same content for it.

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Serialize};

/// The time zone of the schedule ("PT").
pub const PACIFIC_TZ_NAME: &str = "America/Los_Angeles";

static PACIFIC: LazyLock<TimeZone> = LazyLock::new(|| {
    TimeZoneDatabase::bundled()
        .get(PACIFIC_TZ_NAME)
        .or_else(|_| jiff::tz::db().get(PACIFIC_TZ_NAME))
        // Unreachable with the bundled tzdb compiled in; a fixed offset would be wrong half the
        // year, so the schedule tests would catch it.
        .unwrap_or(TimeZone::UTC)
});

/// America/Los_Angeles, from the bundled tzdb.
pub fn pacific() -> &'static TimeZone {
    &PACIFIC
}

/// The two notification types of `SELLER_PERFORMANCE_NOTIFICATIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PerformanceKind {
    /// Daily shipping alarms, 6:00 AM PT every day.
    Alarms,
    /// Weekly KPI report, 5:00 AM PT every Monday.
    Report,
}

impl PerformanceKind {
    /// `payload.notificationType`: `ALARMS` or `REPORT`.
    pub fn notification_type(self) -> &'static str {
        match self {
            PerformanceKind::Alarms => "ALARMS",
            PerformanceKind::Report => "REPORT",
        }
    }

    /// The local time of day of the run.
    pub fn local_time(self) -> Time {
        match self {
            PerformanceKind::Alarms => Time::constant(6, 0, 0, 0),
            PerformanceKind::Report => Time::constant(5, 0, 0, 0),
        }
    }

    /// Whether a run falls on this local date.
    pub fn runs_on(self, date: Date) -> bool {
        match self {
            PerformanceKind::Alarms => true,
            PerformanceKind::Report => date.weekday() == Weekday::Monday,
        }
    }
}

/// The schedule of the performance notifications in a time zone (America/Los_Angeles unless a
/// test says otherwise).
#[derive(Debug, Clone)]
pub struct PerformanceSchedule {
    tz: TimeZone,
}

impl Default for PerformanceSchedule {
    fn default() -> Self {
        PerformanceSchedule::new()
    }
}

impl PerformanceSchedule {
    /// The schedule in America/Los_Angeles.
    pub fn new() -> Self {
        PerformanceSchedule {
            tz: pacific().clone(),
        }
    }

    /// The schedule in another time zone (tests, or a future non-US market).
    pub fn in_time_zone(tz: TimeZone) -> Self {
        PerformanceSchedule { tz }
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The instant of `kind`'s run on a local date, if it runs that day. A local time that a
    /// DST gap skips would be moved forward and one that a fold repeats takes its first
    /// occurrence (jiff's "compatible" rule); 5:00 and 6:00 are never in either in Los Angeles.
    pub fn run_on(&self, date: Date, kind: PerformanceKind) -> Option<Timestamp> {
        if !kind.runs_on(date) {
            return None;
        }
        self.tz
            .to_ambiguous_timestamp(date.to_datetime(kind.local_time()))
            .compatible()
            .ok()
    }

    fn local_date(&self, t: Timestamp) -> Date {
        self.tz.to_datetime(t).date()
    }

    /// The first run strictly after `t`. (`Timestamp::MAX` past the end of jiff's range.)
    pub fn next_run_after(&self, t: Timestamp, kind: PerformanceKind) -> Timestamp {
        let start = self.local_date(t);
        // A run is at most 7 days after the local date of `t`; starting one day early covers an
        // instant whose local date is ahead of the run's (not possible at 5-6 AM, but cheap).
        (-1..=8)
            .filter_map(|days| start.checked_add(jiff::Span::new().days(days)).ok())
            .filter_map(|d| self.run_on(d, kind))
            .find(|&run| run > t)
            .unwrap_or(Timestamp::MAX)
    }

    /// The last run at or before `t`, if jiff's range holds one.
    pub fn latest_run_at_or_before(
        &self,
        t: Timestamp,
        kind: PerformanceKind,
    ) -> Option<Timestamp> {
        let start = self.local_date(t);
        (-8..=1)
            .rev()
            .filter_map(|days| start.checked_add(jiff::Span::new().days(days)).ok())
            .filter_map(|d| self.run_on(d, kind))
            .find(|&run| run <= t)
    }

    /// The single run to send now: the latest scheduled time at or before `now` that is after
    /// `last_done` (the scheduled time of the last run sent; `None` if none was ever sent, in
    /// which case a caller that does not want a run from before a subscription existed passes
    /// the subscription's creation time). Runs missed while the hub was down collapse into the
    /// most recent one; `None` when that one was already sent.
    pub fn runs_due(
        &self,
        kind: PerformanceKind,
        last_done: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let latest = self.latest_run_at_or_before(now, kind)?;
        match last_done {
            Some(done) if done >= latest => None,
            _ => Some(latest),
        }
    }
}

/// The idempotency key of one run: partner, marketplace (`*` for all of a partner's
/// marketplaces), notification type and scheduled time in UTC milliseconds. A store that inserts
/// it under a unique constraint before sending makes two nodes never send the same run twice.
pub fn run_key(
    partner_id: &str,
    marketplace: Option<&str>,
    kind: PerformanceKind,
    scheduled_at: Timestamp,
) -> String {
    format!(
        "perf:{}:{}:{}:{}",
        partner_id,
        marketplace.unwrap_or("*"),
        kind.notification_type(),
        scheduled_at.as_millisecond()
    )
}
