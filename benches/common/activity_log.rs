//! The activity log generator shared by the `replay` and `daemon` benches
//! (included with `#[path]`, so it is compiled into each bench).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::Path;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const REPLIES: &[&str] = &[
    "您好，每日两粒，饭后温水送服。",
    "感谢关注，具体请咨询医生。保健食品不是药物，不能代替药物治疗疾病。",
    "您好，已为您登记，客服会尽快联系您。",
    "坚持服用，效果因人而异。",
];
const QUESTIONS: &[&str] = &[
    "这个一天吃几粒？",
    "孕妇可以吃吗？",
    "我有高血压，能和降压药一起吃吗？",
    "什么时候发货？",
];
const CAPTIONS: &[&str] = &[
    "春季养生小知识：早睡早起，适量运动。",
    "今天直播间福利多多，点击下方链接了解。保健食品不是药物，不能代替药物治疗疾病。",
    "专家推荐的护肝好物，保证有效！",
];

/// Writes `n` events the way a log is written: each line when its event is
/// logged, which may lag the event's own timestamp by up to 90 s (so lines
/// are slightly out of timestamp order, within the reorder window).
pub fn generate(path: &Path, n: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
    let ts = |t: i64| {
        let dt = tz.to_datetime(jiff::Timestamp::from_second(t).unwrap());
        format!("{}+08:00", dt.strftime("%Y-%m-%dT%H:%M:%S"))
    };
    // Lines not yet written, keyed by when they are logged.
    let mut pending: BinaryHeap<Reverse<(i64, u64, String)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut schedule = |pending: &mut BinaryHeap<_>, rng: &mut Rng, at: i64, body: String| {
        seq += 1;
        let line = format!(r#"{{"ts":"{}",{body}}}"#, ts(at));
        pending.push(Reverse((at + rng.below(90) as i64, seq, line)));
    };
    // 2026-01-05 00:00 +08:00, advancing ~30 s per event: 1M events span a year.
    let mut t: i64 = 1_767_542_400;
    let accounts = ["ks-main", "ks-service"];
    let staff = ["zhao.min", "qian.li", "sun.hao", "li.na", "zhou.jie"];
    let mut written = 0usize;
    let mut id = 0u64;
    while written < n {
        t += 20 + rng.below(20) as i64;
        while let Some(Reverse((at, _, _))) = pending.peek()
            && *at <= t
        {
            let Reverse((_, _, line)) = pending.pop().expect("peeked");
            writeln!(out, "{line}")?;
            written += 1;
        }
        id += 1;
        let acct = accounts[rng.below(2) as usize];
        let who = staff[rng.below(5) as usize];
        match rng.below(20) {
            0..=9 => {
                let complexity = if rng.below(5) == 0 {
                    "complex"
                } else {
                    "general"
                };
                let q = QUESTIONS[rng.below(QUESTIONS.len() as u64) as usize];
                schedule(
                    &mut pending,
                    &mut rng,
                    t,
                    format!(
                        r#""type":"message.received","thread":"th-{id}","account":"{acct}","channel":"comment","complexity":"{complexity}","text":"{q}""#
                    ),
                );
                // 90 % answered, some after the deadline.
                if rng.below(10) != 0 {
                    let r = REPLIES[rng.below(REPLIES.len() as u64) as usize];
                    let delay = 60 + rng.below(5400) as i64;
                    schedule(
                        &mut pending,
                        &mut rng,
                        t + delay,
                        format!(
                            r#""type":"message.replied","thread":"th-{id}","by":"{who}","text":"{r}""#
                        ),
                    );
                }
            }
            10..=12 => {
                let sha = format!("{:016x}", rng.next());
                let c = CAPTIONS[rng.below(CAPTIONS.len() as u64) as usize];
                let steps = [
                    format!(
                        r#""type":"content.submitted","content":"p-{id}","author":"sun.hao","sha256":"{sha}""#
                    ),
                    format!(
                        r#""type":"content.reviewed","content":"p-{id}","stage":"internal","decision":"approved","by":"qian.li","sha256":"{sha}""#
                    ),
                    format!(
                        r#""type":"content.reviewed","content":"p-{id}","stage":"final","decision":"approved","by":"zhao.min","sha256":"{sha}""#
                    ),
                    format!(
                        r#""type":"content.published","content":"p-{id}","account":"{acct}","by":"zhao.min","sha256":"{sha}","hashtags":["养生"],"text":"{c}""#
                    ),
                ];
                for (k, body) in steps.into_iter().enumerate() {
                    schedule(&mut pending, &mut rng, t + k as i64 * 600, body);
                }
            }
            13..=15 => schedule(
                &mut pending,
                &mut rng,
                t,
                format!(r#""type":"account.login","account":"{acct}","by":"{who}""#),
            ),
            16 => {
                schedule(
                    &mut pending,
                    &mut rng,
                    t,
                    format!(
                        r#""type":"complaint.opened","complaint":"cp-{id}","thread":"th-{id}""#
                    ),
                );
                schedule(
                    &mut pending,
                    &mut rng,
                    t + 86_400,
                    format!(r#""type":"complaint.resolved","complaint":"cp-{id}","by":"{who}""#),
                );
            }
            17 => schedule(
                &mut pending,
                &mut rng,
                t,
                format!(r#""type":"account.password_changed","account":"{acct}","by":"{who}""#),
            ),
            _ => {
                let period = format!("p{id}");
                schedule(
                    &mut pending,
                    &mut rng,
                    t,
                    format!(
                        r#""type":"appraisal.completed","employee":"{who}","period":"{period}","grade":"合格","supervisor":"zhao.min""#
                    ),
                );
                schedule(
                    &mut pending,
                    &mut rng,
                    t + 2 * 86_400,
                    format!(
                        r#""type":"appraisal.feedback_held","employee":"{who}","period":"{period}","by":"zhao.min""#
                    ),
                );
            }
        }
    }
    out.flush()
}
