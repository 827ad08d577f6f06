//! The shipped rules/ must be valid and their examples must hold.

use std::path::Path;

/// The content packs of issue 3 (other packs in rules/ hold temporal rules,
/// whose examples work differently).
const CONTENT_PACKS: &[&str] = &["claims", "disclosure", "leaks", "customer"];

fn shipped() -> complyd::rules::RuleSet {
    complyd::rules::load(Path::new("rules")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_rules_are_valid_and_examples_pass() {
    let set = shipped();
    assert!(!set.rules.is_empty());
    let report = complyd::ruletest::run(&set);
    assert!(report.examples > 0);
    let failures: Vec<String> = report.failures.iter().map(|d| d.header()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_content_rule_has_flag_and_pass_examples_and_cites_its_basis() {
    let set = shipped();
    let mut seen = Vec::new();
    for rule in set
        .rules
        .iter()
        .filter(|r| CONTENT_PACKS.contains(&r.meta.pack.as_str()))
    {
        let id = &rule.meta.id;
        seen.push(rule.meta.pack.clone());
        assert!(!rule.flag.is_empty(), "{id}: no `flag` example");
        assert!(!rule.pass.is_empty(), "{id}: no `pass` example");
        let clause = rule.meta.clause.join(" ");
        let names_regulation = rule
            .meta
            .clause
            .iter()
            .any(|c| ["5.2", "5.3", "5.4"].contains(&c.as_str()));
        assert!(
            names_regulation,
            "{id}: clause `{clause}` names no 5.x clause"
        );
        if rule.meta.pack == "claims" || rule.meta.pack == "disclosure" {
            assert!(
                clause.contains('法') && clause.contains('条'),
                "{id}: clause `{clause}` names no law article"
            );
        }
    }
    for pack in CONTENT_PACKS {
        assert!(seen.iter().any(|p| p == pack), "pack {pack} is missing");
    }
}

#[test]
fn every_claims_rule_catches_evasions() {
    // Traditional characters, inserted spaces and symbols, full-width forms:
    // each of these must be flagged by the named rule.
    let set = shipped();
    let cases = [
        ("disease-treatment", "治療高血壓"),
        ("disease-treatment", "根 治胃病"),
        ("disease-treatment", "根@治胃病"),
        ("disease-treatment", "根\u{200b}治"),
        ("guaranteed-efficacy", "１００％有效"),
        ("guaranteed-efficacy", "１００ ％ 有 效"),
        ("cure-rate", "有效率达９８％"),
        ("absolute-terms", "國家級"),
        ("absolute-terms", "ＮＯ．１"),
        ("disease-claims", "告 别 失 眠"),
        ("drug-comparison", "比藥還好"),
        ("miracle-cure", "包·治·百·病"),
        ("endorsements", "醫生推薦"),
        (
            "resident-id-number",
            "身份证１１０１０５１９４９１２３１００２Ｘ",
        ),
        ("mobile-number", "电话１３８ １２３４ ５６７８"),
    ];
    for (rule, text) in cases {
        let hits = complyd::ruletest::check_text(&set, text);
        assert!(
            hits.iter().any(|f| f.rule == rule),
            "{rule} missed «{text}»: {:?}",
            hits.iter().map(|f| &f.rule).collect::<Vec<_>>()
        );
    }
}

#[test]
fn compliant_caption_traps_pass_every_rule() {
    let set = shipped();
    for text in [
        "最近天气转凉，注意保暖",
        "第一次直播，感谢家人们",
        "最佳食用时间：早餐后",
        "这首歌太治愈了",
        "蓝帽子保健食品，点击小黄车。保健食品不是药物，不能代替药物治疗疾病",
        "正在服药的朋友请勿擅自停药",
        "有助于维持血糖健康水平。本品不能代替药物，链接在橱窗",
    ] {
        let hits = complyd::ruletest::check_text(&set, text);
        assert!(hits.is_empty(), "«{text}» flagged: {hits:?}");
    }
}

fn load_pack(yaml: &str) -> Result<complyd::rules::RuleSet, complyd::rules::LoadError> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pack.yaml"), yaml).unwrap();
    std::fs::write(tmp.path().join("diseases.txt"), "失眠\n高血压\n").unwrap();
    complyd::rules::load(tmp.path())
}

#[test]
fn unknown_validator_is_invalid_value_listing_the_valid_ones() {
    let err = load_pack(
        "rules:\n  - id: card\n    severity: high\n    message: 卡号\n    clause: \"5.2\"\n    check:\n      phrases:\n        regex: ['\\d{16}']\n        validate: iban\n",
    )
    .unwrap_err();
    let text = err.render(false);
    assert!(text.contains(":9:19: error[invalid-value]: unknown validator `iban`; expected one of: luhn, cn-id, cn-mobile"), "{text}");
}

#[test]
fn validator_and_near_filter_hits() {
    let set = load_pack(
        "rules:\n  - id: card\n    severity: high\n    message: 卡号\n    clause: \"5.2\"\n    check:\n      phrases:\n        regex: ['\\d{4}(\\s?\\d{4}){3}']\n        validate: luhn\n  - id: verb\n    severity: high\n    message: 疾病\n    clause: \"5.3\"\n    check:\n      phrases:\n        terms: [告别, 克星]\n        near: { files: [diseases.txt], within: 3 }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rules = |text: &str| -> Vec<(String, String)> {
        complyd::ruletest::check_text(&set, text)
            .into_iter()
            .map(|f| (f.rule, f.matched))
            .collect()
    };
    let card = |m: &str| vec![("card".to_string(), m.to_string())];
    let verb = |m: &str| vec![("verb".to_string(), m.to_string())];
    assert_eq!(
        rules("卡号4111 1111 1111 1111"),
        card("4111 1111 1111 1111")
    );
    assert_eq!(rules("卡号4111 1111 1111 1112"), vec![]);
    assert_eq!(rules("从此告别失眠"), verb("告别失眠"));
    assert_eq!(rules("高血压的克星"), verb("高血压的克星"));
    // Too far apart, or in another clause.
    assert_eq!(rules("告别了那些年的失眠"), vec![]);
    assert_eq!(rules("告别过去，失眠"), vec![]);
    assert_eq!(rules("告别过去"), vec![]);
}
