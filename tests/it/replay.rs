//! Temporal rules through `complyd replay`, at the edges the regulation cares
//! about: working hours, holidays, 调休 Saturdays, due instants, versions.

use assert_cmd::Command;
use serde_json::Value;

fn replay(log: &str, now: &str) -> (Vec<Value>, String, i32) {
    replay_with(log, now, None)
}

fn replay_with(log: &str, now: &str, config: Option<&str>) -> (Vec<Value>, String, i32) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("activity.jsonl");
    std::fs::write(&path, log).unwrap();
    let mut cmd = Command::cargo_bin("complyd").unwrap();
    cmd.env_remove("COMPLYD_RULES").args([
        "replay", "--rules", "rules", "--format", "json", "--now", now,
    ]);
    if let Some(c) = config {
        let cfg = tmp.path().join("complyd.yaml");
        std::fs::write(&cfg, c).unwrap();
        cmd.arg("--config").arg(cfg);
    }
    let out = cmd.arg(&path).output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap(),
    )
}

fn of_rule<'a>(v: &'a [Value], rule: &str) -> Vec<&'a Value> {
    v.iter().filter(|x| x["rule"] == rule).collect()
}

fn question(ts: &str, thread: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","type":"message.received","thread":"{thread}","account":"ks-service","channel":"comment","complexity":"general","text":"一天吃几粒？"}}"#
    )
}

fn answer(ts: &str, thread: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","type":"message.replied","thread":"{thread}","by":"li.na","text":"您好，每日两粒。"}}"#
    )
}

#[test]
fn friday_1730_question_is_due_monday_0930_and_a_reply_then_is_on_time() {
    let log = [
        question("2026-03-06T17:30:00+08:00", "t1"),
        answer("2026-03-09T09:30:00+08:00", "t1"),
    ]
    .join("\n");
    let (v, _, code) = replay(&log, "2026-03-09T18:00:00+08:00");
    assert!(of_rule(&v, "reply-general-1h").is_empty(), "{v:?}");
    assert_eq!(code, 0, "{v:?}");
}

#[test]
fn a_reply_one_minute_late_leaves_the_violation_marked_late() {
    let log = [
        question("2026-03-06T17:30:00+08:00", "t1"),
        answer("2026-03-09T09:31:00+08:00", "t1"),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-03-09T18:00:00+08:00");
    let r = of_rule(&v, "reply-general-1h");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["subject"], "t1");
    assert_eq!(r[0]["due"], "2026-03-09 09:30");
    assert_eq!(r[0]["late"], "2026-03-09 09:31");
    assert_eq!(r[0]["severity"], "high");
    assert!(
        r[0]["evidence"][0]
            .as_str()
            .unwrap()
            .ends_with("activity.jsonl:1")
    );
}

#[test]
fn spring_festival_eve_counts_the_make_up_saturday() {
    // Friday 13 Feb 2026 17:30: 30 minutes that day, then Saturday 14 Feb is a
    // 调休 working day, so the hour ends at 09:30 on the Saturday.
    let (v, _, _) = replay(
        &question("2026-02-13T17:30:00+08:00", "t2"),
        "2026-02-14T09:31:00+08:00",
    );
    let r = of_rule(&v, "reply-general-1h");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["due"], "2026-02-14 09:30");
    let (v, _, _) = replay(
        &question("2026-02-13T17:30:00+08:00", "t2"),
        "2026-02-14T09:30:00+08:00",
    );
    assert!(
        of_rule(&v, "reply-general-1h").is_empty(),
        "due instant itself is not late"
    );
}

#[test]
fn a_question_on_the_make_up_saturday_evening_waits_out_the_festival() {
    // Saturday 14 Feb 17:30 (working day): 30 minutes, then 15–23 Feb are
    // holidays; counting resumes Tuesday 24 Feb 09:00.
    let (v, _, _) = replay(
        &question("2026-02-14T17:30:00+08:00", "t3"),
        "2026-02-25T09:00:00+08:00",
    );
    let r = of_rule(&v, "reply-general-1h");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["due"], "2026-02-24 09:30");
}

#[test]
fn approvals_after_the_publication_do_not_count() {
    let log = r#"{"ts":"2026-03-02T12:00:00+08:00","type":"content.published","content":"p","account":"ks-main","by":"zhao.min","sha256":"s1","hashtags":["养生"],"text":"春季养生"}
{"ts":"2026-03-02T13:00:00+08:00","type":"content.reviewed","content":"p","stage":"internal","decision":"approved","by":"qian.li","sha256":"s1"}
{"ts":"2026-03-02T13:30:00+08:00","type":"content.reviewed","content":"p","stage":"final","decision":"approved","by":"zhao.min","sha256":"s1"}"#;
    let (v, _, _) = replay(log, "2026-03-02T18:00:00+08:00");
    let r = of_rule(&v, "two-stage-review");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["detail"], "缺少有效的：内部审核、最终审核");
}

#[test]
fn an_approval_of_an_older_version_does_not_count() {
    let log = r#"{"ts":"2026-03-02T10:00:00+08:00","type":"content.reviewed","content":"p","stage":"internal","decision":"approved","by":"qian.li","sha256":"new"}
{"ts":"2026-03-02T11:00:00+08:00","type":"content.reviewed","content":"p","stage":"final","decision":"approved","by":"zhao.min","sha256":"old"}
{"ts":"2026-03-02T12:00:00+08:00","type":"content.published","content":"p","account":"ks-main","by":"zhao.min","sha256":"new","hashtags":["养生"],"text":"春季养生"}"#;
    let (v, _, _) = replay(log, "2026-03-02T18:00:00+08:00");
    let r = of_rule(&v, "two-stage-review");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["detail"], "缺少有效的：最终审核");
}

#[test]
fn out_of_order_lines_and_malformed_lines() {
    // The reply is written before the question; a broken line sits between.
    let log = [
        answer("2026-03-02T10:20:00+08:00", "t4"),
        "{\"ts\": oops".to_string(),
        question("2026-03-02T10:00:00+08:00", "t4"),
    ]
    .join("\n");
    let (v, err, _) = replay(&log, "2026-03-02T18:00:00+08:00");
    assert!(of_rule(&v, "reply-general-1h").is_empty(), "{v:?}");
    assert!(
        err.contains("activity.jsonl:2: malformed event: invalid JSON"),
        "{err}"
    );
    assert!(
        err.contains(
            "2 events replayed (1 malformed line, 0 after --now skipped, 0 too late to reorder, 0 withdrawn as logged late)"
        ),
        "{err}"
    );
}

#[test]
fn reply_text_goes_through_the_content_rules() {
    let log = [
        question("2026-03-02T10:00:00+08:00", "t5"),
        r#"{"ts":"2026-03-02T10:10:00+08:00","type":"message.replied","thread":"t5","by":"li.na","text":"坚持吃可以根 治失眠"}"#.to_string(),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-03-02T18:00:00+08:00");
    let r = of_rule(&v, "disease-treatment");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["matched"], "根 治");
    assert_eq!(r[0]["subject"], "t5");
}

#[test]
fn bad_now_is_a_usage_error() {
    let (_, err, code) = replay("", "tomorrow");
    assert_eq!(code, 2);
    assert!(err.contains("--now"), "{err}");
}

#[test]
fn events_later_than_the_window_are_evaluated_at_the_current_clock() {
    // The reply is written after events stamped 12:00 and 12:10: with a
    // 5-minute window the 12:00 one has been evaluated (firing the 11:00
    // deadline) when the 10:30 reply arrives.
    let log = [
        question("2026-03-02T10:00:00+08:00", "t6"),
        r#"{"ts":"2026-03-02T12:00:00+08:00","type":"account.login","account":"ks-main","by":"zhao.min"}"#.to_string(),
        r#"{"ts":"2026-03-02T12:10:00+08:00","type":"account.login","account":"ks-main","by":"zhao.min"}"#.to_string(),
        answer("2026-03-02T10:30:00+08:00", "t6"),
    ]
    .join("\n");
    let (v, err, _) = replay(&log, "2026-03-02T18:00:00+08:00");
    assert!(
        err.contains("1 too late to reorder, 1 withdrawn as logged late"),
        "{err}"
    );
    // The reply itself was in time: the violation fired at 11:00 is withdrawn.
    assert!(of_rule(&v, "reply-general-1h").is_empty(), "{v:?}");
}

#[test]
fn customer_words_meet_only_the_customer_rules() {
    // A customer asking about a cure is not a claim; an insult is routed.
    let log = r#"{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"c-9","account":"ks-service","channel":"comment","complexity":"general","text":"能根治高血压吗？你们就是一群骗子，傻逼"}
{"ts":"2026-03-02T10:05:00+08:00","type":"message.replied","thread":"c-9","by":"li.na","text":"您好，保健食品不是药物，不能代替药物治疗疾病。"}"#;
    let (v, _, _) = replay(log, "2026-03-02T18:00:00+08:00");
    let rules: Vec<&str> = v.iter().map(|x| x["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["customer-abuse"], "{v:?}");
    assert_eq!(v[0]["severity"], "low");
}

#[test]
fn a_lunch_break_from_the_configuration_moves_the_due_instant() {
    let cfg = "calendar:\n  working_hours: [09:00-12:00, 13:30-18:00]\n";
    let (v, _, _) = replay_with(
        &question("2026-03-02T11:30:00+08:00", "t7"),
        "2026-03-02T18:00:00+08:00",
        Some(cfg),
    );
    let r = of_rule(&v, "reply-general-1h");
    assert_eq!(r[0]["due"], "2026-03-02 14:00", "{v:?}");
    let (_, err, code) = replay_with(
        "",
        "2026-03-02T18:00:00+08:00",
        Some("calendar:\n  working_hours: [9-5]\n"),
    );
    assert_eq!(code, 78);
    assert!(
        err.contains("complyd.yaml:2:19: error[invalid-value]"),
        "{err}"
    );
}

#[test]
fn a_second_incident_on_a_key_whose_deadline_fired_gets_its_own_deadline() {
    let log = r#"{"ts":"2026-03-02T10:00:00+08:00","type":"account.anomaly","account":"ks-main","detail":"异地登录"}
{"ts":"2026-03-10T10:00:00+08:00","type":"account.anomaly","account":"ks-main","detail":"异地登录"}
{"ts":"2026-03-10T15:00:00+08:00","type":"account.password_changed","account":"ks-main","by":"zhao.min"}"#;
    let (v, _, _) = replay(log, "2026-03-16T18:00:00+08:00");
    let r = of_rule(&v, "anomaly-password-change");
    assert_eq!(r.len(), 2, "{v:?}");
    let lates: Vec<&Value> = r.iter().map(|x| &x["late"]).collect();
    // The password change answers the newer incident (late); the older one
    // stays a plain violation.
    assert!(lates.contains(&&Value::from("2026-03-10 15:00")), "{r:?}");
}

#[test]
fn a_byte_order_mark_and_crlf_do_not_lose_the_first_event() {
    let log = "\u{feff}{\"ts\":\"2026-03-02T10:00:00+08:00\",\"type\":\"account.login\",\"account\":\"ks-main\",\"by\":\"wang.wu\"}\r\n";
    let (v, err, _) = replay(log, "2026-03-02T18:00:00+08:00");
    assert_eq!(of_rule(&v, "account-lent").len(), 1, "{err}");
}

#[test]
fn an_event_after_now_does_not_shut_the_reorder_window() {
    let log = [
        r#"{"ts":"2027-03-02T10:00:00+08:00","type":"account.login","account":"ks-main","by":"zhao.min"}"#.to_string(),
        answer("2026-03-02T10:03:00+08:00", "t8"),
        question("2026-03-02T10:01:00+08:00", "t8"),
    ]
    .join("\n");
    let (v, err, _) = replay(&log, "2026-03-02T18:00:00+08:00");
    assert!(of_rule(&v, "reply-general-1h").is_empty(), "{v:?}");
    assert!(err.contains("1 after --now skipped, 0 too late"), "{err}");
}

#[test]
fn empty_hashtags_count_as_missing_and_unreadable_input_is_not_clean() {
    let log = r#"{"ts":"2026-03-02T12:00:00+08:00","type":"content.published","content":"p9","account":"ks-main","by":"qian.li","sha256":"x","hashtags":[],"text":"养生"}"#;
    let (v, _, _) = replay(log, "2026-03-02T13:00:00+08:00");
    assert_eq!(of_rule(&v, "hashtags-missing").len(), 1, "{v:?}");
    let (v, err, code) = replay("not json at all\n", "2026-03-02T13:00:00+08:00");
    assert!(v.is_empty());
    assert_eq!(code, 1, "{err}");
}

#[test]
fn both_review_stages_by_one_person_is_flagged_but_two_people_pass() {
    let review = |stage: &str, by: &str, ts: &str| {
        format!(
            r#"{{"ts":"{ts}","type":"content.reviewed","content":"p","stage":"{stage}","decision":"approved","by":"{by}","sha256":"s"}}"#
        )
    };
    let publish = r#"{"ts":"2026-03-02T12:00:00+08:00","type":"content.published","content":"p","account":"ks-main","by":"zhao.min","sha256":"s","hashtags":["养生"],"text":"春季养生"}"#;
    let same = [
        review("internal", "qian.li", "2026-03-02T10:00:00+08:00"),
        review("final", "qian.li", "2026-03-02T11:00:00+08:00"),
        publish.to_string(),
    ]
    .join("\n");
    let (v, _, _) = replay(&same, "2026-03-02T18:00:00+08:00");
    let r = of_rule(&v, "two-stage-review");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["detail"], "各级审核须由不同人员完成");
    // Either reviewer could have done either stage: an assignment exists.
    let two = [
        review("internal", "qian.li", "2026-03-02T09:00:00+08:00"),
        review("internal", "zhao.min", "2026-03-02T10:00:00+08:00"),
        review("final", "qian.li", "2026-03-02T11:00:00+08:00"),
        publish.to_string(),
    ]
    .join("\n");
    let (v, _, _) = replay(&two, "2026-03-02T18:00:00+08:00");
    assert!(of_rule(&v, "two-stage-review").is_empty(), "{v:?}");
}

#[test]
fn a_missed_deadline_is_explained_in_natural_chinese() {
    let (v, _, _) = replay(
        &question("2026-03-06T10:00:00+08:00", "t1"),
        "2026-03-06T18:00:00+08:00",
    );
    let r = of_rule(&v, "reply-general-1h");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(
        r[0]["detail"],
        "回复应在1个工作小时内完成，截至2026-03-06 11:00仍未完成"
    );
}

fn password_changed(ts: &str, account: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","type":"account.password_changed","account":"{account}","by":"zhao.min"}}"#
    )
}

#[test]
fn a_password_unchanged_for_most_of_a_year_is_one_violation_not_one_per_period() {
    let log = [
        password_changed("2026-01-05T10:00:00+08:00", "ks-main"),
        password_changed("2026-01-05T10:00:00+08:00", "ks-service"),
        // ks-service keeps to the rule all year.
        password_changed("2026-04-01T10:00:00+08:00", "ks-service"),
        password_changed("2026-06-25T10:00:00+08:00", "ks-service"),
        password_changed("2026-09-20T10:00:00+08:00", "ks-service"),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-12-01T10:00:00+08:00");
    let r = of_rule(&v, "password-age");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["subject"], "ks-main");
    assert_eq!(r[0]["due"], "2026-04-05 10:00");
    assert!(r[0]["late"].is_null(), "{v:?}");
}

#[test]
fn a_late_renewal_marks_the_lapse_late_and_starts_the_next_period() {
    let log = [
        password_changed("2026-01-05T10:00:00+08:00", "ks-main"),
        password_changed("2026-01-05T10:00:00+08:00", "ks-service"),
        password_changed("2026-03-20T10:00:00+08:00", "ks-service"),
        password_changed("2026-06-10T10:00:00+08:00", "ks-service"),
        // Due 2026-04-05, changed ten days late.
        password_changed("2026-04-15T10:00:00+08:00", "ks-main"),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-07-20T10:00:00+08:00");
    let r = of_rule(&v, "password-age");
    assert_eq!(r.len(), 2, "{v:?}");
    let mut r: Vec<(String, String)> = r
        .iter()
        .map(|x| (x["due"].as_str().unwrap().into(), x["late"].to_string()))
        .collect();
    r.sort();
    // The next period runs from the late change: due 2026-07-14, missed.
    assert_eq!(
        r,
        [
            (
                "2026-04-05 10:00".to_string(),
                "\"2026-04-15 10:00\"".to_string()
            ),
            ("2026-07-14 10:00".to_string(), "null".to_string()),
        ]
    );
}

#[test]
fn violations_are_listed_in_time_order_not_in_the_order_they_became_final() {
    let login = r#"{"ts":"2026-03-02T10:30:00+08:00","type":"account.login","account":"ks-main","by":"wang.wu"}"#;
    let log = [
        question("2026-03-02T09:00:00+08:00", "t1"),
        login.to_string(),
        // t1 was due at 10:00; its violation is final only now.
        answer("2026-03-02T11:00:00+08:00", "t1"),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-03-02T18:00:00+08:00");
    let order: Vec<&str> = v.iter().map(|x| x["rule"].as_str().unwrap()).collect();
    assert_eq!(order, ["reply-general-1h", "account-lent"], "{v:?}");
    let ats: Vec<&str> = v.iter().map(|x| x["at"].as_str().unwrap()).collect();
    assert!(ats.is_sorted(), "{ats:?}");
}

#[test]
fn an_older_password_change_read_late_neither_withdraws_the_lapse_nor_starts_a_period() {
    let log = [
        password_changed("2026-01-05T10:00:00+08:00", "ks-main"),
        password_changed("2026-01-05T10:00:00+08:00", "ks-service"),
        password_changed("2026-04-01T10:00:00+08:00", "ks-service"),
        // Stamped before the period ks-main is in, read in April (an
        // archived log, say): later than the reorder window.
        password_changed("2026-01-04T10:00:00+08:00", "ks-main"),
    ]
    .join("\n");
    let (v, _, _) = replay(&log, "2026-04-20T10:00:00+08:00");
    let r = of_rule(&v, "password-age");
    assert_eq!(r.len(), 1, "{v:?}");
    assert_eq!(r[0]["subject"], "ks-main");
    assert_eq!(r[0]["due"], "2026-04-05 10:00");
    assert!(r[0]["late"].is_null(), "{v:?}");
}
