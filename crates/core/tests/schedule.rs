//! The performance schedule across the 2026 and 2027 US daylight-saving changes: ALARMS daily at
//! 6:00 AM PT, REPORT Mondays at 5:00 AM PT, and one catch-up run after an outage.

use jiff::Timestamp;
use jiff::civil::date;
use switchyard_core::schedule::{PerformanceKind, PerformanceSchedule, run_key};

use PerformanceKind::{Alarms, Report};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// (local date, expected UTC instant of the 6:00 AM PT run), on the days before, on and after
/// each change.
const ALARM_RUNS: &[(&str, &str)] = &[
    // 2026-03-08: PST (UTC-8) -> PDT (UTC-7).
    ("2026-03-07", "2026-03-07T14:00:00Z"),
    ("2026-03-08", "2026-03-08T13:00:00Z"),
    ("2026-03-09", "2026-03-09T13:00:00Z"),
    // 2026-11-01: PDT -> PST.
    ("2026-10-31", "2026-10-31T13:00:00Z"),
    ("2026-11-01", "2026-11-01T14:00:00Z"),
    ("2026-11-02", "2026-11-02T14:00:00Z"),
    // 2027-03-14.
    ("2027-03-13", "2027-03-13T14:00:00Z"),
    ("2027-03-14", "2027-03-14T13:00:00Z"),
    ("2027-03-15", "2027-03-15T13:00:00Z"),
    // 2027-11-07.
    ("2027-11-06", "2027-11-06T13:00:00Z"),
    ("2027-11-07", "2027-11-07T14:00:00Z"),
    ("2027-11-08", "2027-11-08T14:00:00Z"),
];

/// The Monday 5:00 AM PT reports on either side of each change.
const REPORT_RUNS: &[(&str, &str)] = &[
    ("2026-03-02", "2026-03-02T13:00:00Z"),
    ("2026-03-09", "2026-03-09T12:00:00Z"),
    ("2026-10-26", "2026-10-26T12:00:00Z"),
    ("2026-11-02", "2026-11-02T13:00:00Z"),
    ("2027-03-08", "2027-03-08T13:00:00Z"),
    ("2027-03-15", "2027-03-15T12:00:00Z"),
    ("2027-11-01", "2027-11-01T12:00:00Z"),
    ("2027-11-08", "2027-11-08T13:00:00Z"),
];

#[test]
fn alarms_run_at_six_am_pacific_across_every_2026_and_2027_change() {
    let s = PerformanceSchedule::new();
    for (day, utc) in ALARM_RUNS {
        let day: jiff::civil::Date = day.parse().unwrap();
        let run = ts(utc);
        assert_eq!(s.run_on(day, Alarms), Some(run), "{day}");
        // The run is found from a second before it and from the same instant.
        assert_eq!(
            s.next_run_after(run - jiff::SignedDuration::from_secs(1), Alarms),
            run
        );
        assert_eq!(s.latest_run_at_or_before(run, Alarms), Some(run));
        // From the run itself, the next one is the next local day's 6:00.
        let next_day = day.tomorrow().unwrap();
        assert_eq!(
            Some(s.next_run_after(run, Alarms)),
            s.run_on(next_day, Alarms)
        );
    }
}

#[test]
fn consecutive_alarm_runs_are_23_24_or_25_hours_apart_at_the_changes() {
    let s = PerformanceSchedule::new();
    let gap = |from: &str| {
        let a = s.next_run_after(ts(from), Alarms);
        let b = s.next_run_after(a, Alarms);
        (b.as_second() - a.as_second()) / 3600
    };
    assert_eq!(gap("2026-03-07T12:00:00Z"), 23, "spring forward 2026");
    assert_eq!(gap("2026-03-10T12:00:00Z"), 24);
    assert_eq!(gap("2026-10-31T12:00:00Z"), 25, "fall back 2026");
    assert_eq!(gap("2027-03-13T12:00:00Z"), 23, "spring forward 2027");
    assert_eq!(gap("2027-11-06T12:00:00Z"), 25, "fall back 2027");
}

#[test]
fn the_night_of_the_change_itself_does_not_confuse_the_schedule() {
    let s = PerformanceSchedule::new();
    // 2026-11-01 01:30 PT happens twice (08:30Z PDT and 09:30Z PST); both are before the run.
    for t in ["2026-11-01T08:30:00Z", "2026-11-01T09:30:00Z"] {
        assert_eq!(
            s.next_run_after(ts(t), Alarms),
            ts("2026-11-01T14:00:00Z"),
            "{t}"
        );
        assert_eq!(
            s.latest_run_at_or_before(ts(t), Alarms),
            Some(ts("2026-10-31T13:00:00Z"))
        );
    }
    // 2027-03-14 02:30 PT does not exist; 10:00Z is 03:00 PDT.
    assert_eq!(
        s.next_run_after(ts("2027-03-14T10:00:00Z"), Alarms),
        ts("2027-03-14T13:00:00Z")
    );
    // Late evening PT is the next day in UTC: the next run is the next PT morning.
    assert_eq!(
        s.next_run_after(ts("2026-03-08T07:30:00Z"), Alarms), // 2026-03-07 23:30 PST
        ts("2026-03-08T13:00:00Z")
    );
}

#[test]
fn reports_run_mondays_at_five_am_pacific_across_the_changes() {
    let s = PerformanceSchedule::new();
    for (day, utc) in REPORT_RUNS {
        let day: jiff::civil::Date = day.parse().unwrap();
        let run = ts(utc);
        assert_eq!(s.run_on(day, Report), Some(run), "{day}");
        assert_eq!(s.latest_run_at_or_before(run, Report), Some(run));
        assert_eq!(
            s.next_run_after(run, Report),
            s.run_on(day.checked_add(jiff::Span::new().days(7)).unwrap(), Report)
                .unwrap()
        );
    }
    // No report on other days.
    assert_eq!(s.run_on(date(2026, 3, 8), Report), None);
    // From Tuesday, the next report is the following Monday, the previous one yesterday.
    let tuesday = ts("2026-03-03T18:00:00Z");
    assert_eq!(
        s.next_run_after(tuesday, Report),
        ts("2026-03-09T12:00:00Z")
    );
    assert_eq!(
        s.latest_run_at_or_before(tuesday, Report),
        Some(ts("2026-03-02T13:00:00Z"))
    );
    // The Sunday of the fall-back change: the next report is Monday 5:00 PST.
    assert_eq!(
        s.next_run_after(ts("2026-11-01T20:00:00Z"), Report),
        ts("2026-11-02T13:00:00Z")
    );
    // A report is at 5:00 and not at 6:00: 5:30 PT Monday is after it.
    assert_eq!(
        s.latest_run_at_or_before(ts("2027-11-08T13:30:00Z"), Report),
        Some(ts("2027-11-08T13:00:00Z"))
    );
}

#[test]
fn runs_due_sends_only_the_latest_missed_run_once() {
    let s = PerformanceSchedule::new();
    // Last ALARMS sent on 2026-03-06 at 6:00 PST; the hub was down until 2026-03-09 09:00 PDT,
    // across the spring change. The runs of 03-07, 03-08 and 03-09 were missed.
    let last = ts("2026-03-06T14:00:00Z");
    let now = ts("2026-03-09T16:00:00Z");
    assert_eq!(
        s.runs_due(Alarms, Some(last), now),
        Some(ts("2026-03-09T13:00:00Z"))
    );
    // Once it is recorded, nothing more is due until the next morning.
    let sent = ts("2026-03-09T13:00:00Z");
    assert_eq!(s.runs_due(Alarms, Some(sent), now), None);
    assert_eq!(
        s.runs_due(Alarms, Some(sent), ts("2026-03-10T12:59:59Z")),
        None
    );
    assert_eq!(
        s.runs_due(Alarms, Some(sent), ts("2026-03-10T13:00:00Z")),
        Some(ts("2026-03-10T13:00:00Z"))
    );
    // Down before 6:00 that morning: the previous day's run is the one due.
    assert_eq!(
        s.runs_due(Alarms, Some(last), ts("2026-03-09T12:00:00Z")),
        Some(ts("2026-03-08T13:00:00Z"))
    );
    // Never sent: the latest run.
    assert_eq!(
        s.runs_due(Alarms, None, now),
        Some(ts("2026-03-09T13:00:00Z"))
    );
    // Reports: down for three weeks across the fall change, one report is due.
    let last_report = ts("2027-10-18T12:00:00Z");
    assert_eq!(
        s.runs_due(Report, Some(last_report), ts("2027-11-10T00:00:00Z")),
        Some(ts("2027-11-08T13:00:00Z"))
    );
    assert_eq!(
        s.runs_due(
            Report,
            Some(ts("2027-11-08T13:00:00Z")),
            ts("2027-11-10T00:00:00Z")
        ),
        None
    );
}

#[test]
fn run_keys_name_partner_type_and_scheduled_time() {
    let t = ts("2026-03-09T13:00:00Z");
    assert_eq!(
        run_key("p1", None, Alarms, t),
        format!("perf:p1:*:ALARMS:{}", t.as_millisecond())
    );
    assert_ne!(
        run_key("p1", None, Alarms, t),
        run_key("p1", None, Report, t)
    );
    assert_ne!(
        run_key("p1", Some("amazon"), Alarms, t),
        run_key("p1", Some("ebay"), Alarms, t)
    );
    assert_eq!(Alarms.notification_type(), "ALARMS");
    assert_eq!(Report.notification_type(), "REPORT");
}

#[test]
fn the_time_zone_comes_from_the_bundled_tzdb() {
    let bundled = jiff::tz::TimeZoneDatabase::bundled();
    assert!(bundled.get("America/Los_Angeles").is_ok());
    assert_eq!(
        switchyard_core::schedule::pacific().iana_name(),
        Some("America/Los_Angeles")
    );
}

/// A scheduler loop driven by the injected clock: it wakes every 10 minutes from 2026-10-29 to
/// 2026-11-05 (across the fall change), with the hub down from 2026-11-02 03:00 PST to
/// 2026-11-04 20:00 PST, and sends whatever `runs_due` returns.
#[test]
fn a_clock_driven_loop_sends_each_run_once_and_one_catch_up_after_an_outage() {
    use switchyard_core::{Clock, ManualClock};
    let s = PerformanceSchedule::new();
    let clock = ManualClock::new(ts("2026-10-29T07:00:00Z"));
    let down_from = ts("2026-11-02T11:00:00Z");
    let down_until = ts("2026-11-05T04:00:00Z");
    let end = ts("2026-11-06T00:00:00Z");
    let mut last_alarm = None;
    let mut last_report = None;
    let mut sent = Vec::new();
    while clock.now() < end {
        let now = clock.now();
        if now < down_from || now >= down_until {
            for (kind, last) in [(Alarms, &mut last_alarm), (Report, &mut last_report)] {
                if let Some(run) = s.runs_due(kind, *last, now) {
                    sent.push((kind, run, now));
                    *last = Some(run);
                }
            }
        }
        clock.advance(jiff::SignedDuration::from_mins(10));
    }
    let runs: Vec<(PerformanceKind, Timestamp)> = sent.iter().map(|(k, r, _)| (*k, *r)).collect();
    assert_eq!(
        runs,
        [
            // First start: the latest run of each kind.
            (Alarms, ts("2026-10-28T13:00:00Z")),
            (Report, ts("2026-10-26T12:00:00Z")),
            (Alarms, ts("2026-10-29T13:00:00Z")),
            (Alarms, ts("2026-10-30T13:00:00Z")),
            (Alarms, ts("2026-10-31T13:00:00Z")),
            (Alarms, ts("2026-11-01T14:00:00Z")),
            // Down through the 11-02, 11-03 and 11-04 alarms and the 11-02 report: one catch-up
            // of each, the latest, on return.
            (Alarms, ts("2026-11-04T14:00:00Z")),
            (Report, ts("2026-11-02T13:00:00Z")),
            (Alarms, ts("2026-11-05T14:00:00Z")),
        ]
    );
    // The catch-ups went out on return.
    assert!(sent[6..8].iter().all(|(_, _, at)| *at == down_until));
    // Each on-time run went out within one wake-up interval of its scheduled time.
    for (kind, run, at) in sent[2..6].iter().chain(&sent[8..]) {
        assert!(
            *at >= *run && at.duration_since(*run) < jiff::SignedDuration::from_mins(10),
            "{kind:?}"
        );
    }
}
