//! Definitions: the bundled file, the schema id, and every refusal naming
//! the feature and the field.

use cx_featurestore::{Computation, Definitions, Error, Value, ValueType};

const BUNDLED: &str = include_str!("../../../models/features.toml");

fn refuse(toml: &str) -> String {
    match Definitions::from_toml_str(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

fn feature(name: &str, extra: &str) -> String {
    format!(
        "[[feature]]\nname = \"{name}\"\nkind = \"engagement\"\ntype = \"i64\"\nttl = \"1d\"\ndefault = 0\n{extra}\n"
    )
}

#[test]
fn the_bundled_definitions_load() {
    let defs = Definitions::from_toml_str(BUNDLED).expect("bundled definitions");
    assert_eq!(defs.stored().len(), 10);
    assert_eq!(defs.computed().len(), 3);
    assert_eq!(defs.len(), 13);
    assert_eq!(defs.id().len(), 16);
    // Pinned: an accidental change to the file or the canonical text fails here.
    assert_eq!(defs.id(), "61c4cbd57c937148", "{}", defs.canonical());
    let band = defs.find("age_band").unwrap();
    assert_eq!(defs.value_type(band), Some(ValueType::Category));
    assert_eq!(defs.category(band, "25-34"), Some(Value::Category(2)));
    assert_eq!(defs.label(band, Value::Category(5)), Some("55+"));
    let recent = defs.find("recent_buyer").unwrap();
    assert_eq!(recent.index(), 12);
    assert_eq!(defs.value_type(recent), Some(ValueType::Bool));
    let days = defs.find("days_since_purchase").unwrap();
    assert!(matches!(
        defs.computed()[0].op,
        Computation::DaysSince { default, .. } if default == 365.0
    ));
    assert_eq!(defs.name(days), "days_since_purchase");
    let rules: Vec<(String, String)> = defs
        .update_rules()
        .map(|(id, r)| {
            (
                defs.name(id).to_owned(),
                format!("{} {}", r.on_event, r.update),
            )
        })
        .collect();
    let rule = |n: &str, r: &str| (n.to_owned(), r.to_owned());
    assert_eq!(
        rules,
        [
            rule("views_30d", "impression count"),
            rule("clicks_30d", "click count"),
            rule("conversions_30d", "conversion count"),
            rule("last_purchase_at", "conversion set_time"),
            rule("spend_90d", "conversion add_value"),
        ]
    );
    assert!(defs
        .canonical()
        .contains("feature views_30d entity=user kind=engagement type=i64 ttl_s=172800 default=0 on_event=impression update=count\n"));
}

#[test]
fn files_without_rules_keep_their_ids() {
    // The canonical line of a feature without a rule is what it was before
    // rules existed: this file's id was pinned then.
    let plain = BUNDLED
        .lines()
        .filter(|l| !l.starts_with("on_event") && !l.starts_with("update"))
        .collect::<Vec<_>>()
        .join("\n");
    let defs = Definitions::from_toml_str(&plain).unwrap();
    assert_eq!(defs.update_rules().count(), 0);
    assert_eq!(defs.id(), "49a22c3194db4d04", "{}", defs.canonical());
}

#[test]
fn the_id_covers_what_reads_return_not_descriptions() {
    let base = Definitions::from_toml_str(BUNDLED).unwrap();
    let same = BUNDLED.replace("Sessions in the last 7 days", "another text");
    assert_eq!(Definitions::from_toml_str(&same).unwrap().id(), base.id());
    for changed in [
        BUNDLED.replace("ttl = \"1d\"\ndefault = 0.5", "ttl = \"2d\"\ndefault = 0.5"),
        BUNDLED.replace("default = 0.5", "default = 0.4"),
        BUNDLED.replace("prior_weight = 50.0", "prior_weight = 40.0"),
        BUNDLED.replace("cmp = \"<=\"", "cmp = \"<\""),
        BUNDLED.replace("\"55+\"]", "\"55-64\"]"),
        BUNDLED.replace("kind = \"predictive\"", "kind = \"behavioral\""),
        // An update rule changes what the stored values mean online.
        BUNDLED.replace("on_event = \"click\"", "on_event = \"impression\""),
        BUNDLED.replace("on_event = \"impression\"\nupdate = \"count\"\n", ""),
    ] {
        let other = Definitions::from_toml_str(&changed).unwrap();
        assert_ne!(other.id(), base.id(), "{}", other.canonical());
    }
}

#[test]
fn computed_features_may_read_computed_ones_declared_later() {
    let toml = format!(
        "{}[[computed]]\nname = \"flag\"\nkind = \"engagement\"\nop = \"threshold\"\ninput = \"r\"\ncmp = \">\"\nvalue = 0.5\n\
         [[computed]]\nname = \"r\"\nkind = \"engagement\"\nop = \"ratio\"\nnumerator = \"a\"\ndenominator = \"a\"\nprior_mean = 0.0\nprior_weight = 1\n",
        feature("a", "")
    );
    let defs = Definitions::from_toml_str(&toml).unwrap();
    assert_eq!(defs.find("flag").unwrap().index(), 1);
    assert_eq!(defs.find("r").unwrap().index(), 2);
}

/// Each bad input, and the words its error must contain (the feature and
/// the field at least).
#[test]
fn bad_definitions_are_refused_naming_feature_and_field() {
    let computed = |name: &str, body: &str| {
        format!(
            "{}[[computed]]\nname = \"{name}\"\nkind = \"engagement\"\n{body}\n",
            feature("a", "")
        )
    };
    let ts = "[[feature]]\nname = \"t\"\nkind = \"behavioral\"\ntype = \"timestamp\"\nttl = \"1d\"\ndefault = 0\n";
    let cases: Vec<(String, &[&str])> = vec![
        (feature("a", "") + &feature("a", ""), &["'a'", "'name'", "duplicate"]),
        (
            computed("a", "op = \"days_since\"\ninput = \"a\"\ndefault = 1"),
            &["'a'", "'name'", "duplicate"],
        ),
        (
            computed("r", "op = \"ratio\"\nnumerator = \"nope\"\ndenominator = \"a\"\nprior_mean = 0.1\nprior_weight = 1"),
            &["'r'", "'numerator'", "unknown feature 'nope'"],
        ),
        (
            format!(
                "{}[[computed]]\nname = \"x\"\nkind = \"engagement\"\nop = \"threshold\"\ninput = \"y\"\ncmp = \">\"\nvalue = 1\n\
                 [[computed]]\nname = \"y\"\nkind = \"engagement\"\nop = \"threshold\"\ninput = \"x\"\ncmp = \">\"\nvalue = 1\n",
                feature("a", "")
            ),
            &["'x'", "'input'", "cycle", "x -> y -> x"],
        ),
        (
            computed("s", "op = \"threshold\"\ninput = \"s\"\ncmp = \">\"\nvalue = 1"),
            &["'s'", "'input'", "cycle"],
        ),
        (feature("a", "").replace("1d", "0s"), &["'a'", "'ttl'", "1s to 3650d"]),
        (feature("a", "").replace("1d", "5w"), &["'a'", "'ttl'", "unit"]),
        (feature("a", "").replace("1d", "abc"), &["'a'", "'ttl'"]),
        (feature("a", "").replace("1d", "3651d"), &["'a'", "'ttl'", "3650d"]),
        (feature("a", "").replace("ttl = \"1d\"\n", ""), &["'a'", "'ttl'", "missing"]),
        (feature("a", "").replace("default = 0\n", ""), &["'a'", "'default'", "missing"]),
        (feature("a", "").replace("default = 0", "default = 1.5"), &["'a'", "'default'", "i64"]),
        (feature("a", "").replace("\"i64\"", "\"f32\"").replace("default = 0", "default = \"x\""), &["'a'", "'default'", "f32"]),
        (feature("a", "").replace("\"i64\"", "\"u8\""), &["'a'", "'type'", "'u8'"]),
        (feature("a", "").replace("\"engagement\"", "\"social\""), &["'a'", "'kind'", "'social'"]),
        (feature("a", "entity = \"device\""), &["'a'", "'entity'", "'device'", "known: user"]),
        (feature("a", "categories = [\"x\"]"), &["'a'", "'categories'", "only a category"]),
        (
            feature("c", "categories = [\"x\", \"y\"]").replace("\"i64\"", "\"category\"").replace("default = 0", "default = \"z\""),
            &["'c'", "'default'", "'z'"],
        ),
        (
            feature("c", "categories = [\"x\", \"x\"]").replace("\"i64\"", "\"category\"").replace("default = 0", "default = \"x\""),
            &["'c'", "'categories'", "twice"],
        ),
        (
            feature("c", "").replace("\"i64\"", "\"category\"").replace("default = 0", "default = \"x\""),
            &["'c'", "'categories'", "missing"],
        ),
        (feature("Bad-Name", ""), &["'#0'", "'name'", "Bad-Name"]),
        (computed("d", "op = \"days_since\"\ninput = \"a\"\ndefault = 1"), &["'d'", "'input'", "timestamp"]),
        (
            format!("{ts}{}", computed("r", "op = \"ratio\"\nnumerator = \"t\"\ndenominator = \"a\"\nprior_mean = 0\nprior_weight = 1")),
            &["'r'", "'numerator'", "'t' is a timestamp"],
        ),
        (
            computed("r", "op = \"ratio\"\nnumerator = \"a\"\ndenominator = \"a\"\nprior_mean = 0\nprior_weight = 0"),
            &["'r'", "'prior_weight'", "above 0"],
        ),
        (
            computed("r", "op = \"ratio\"\nnumerator = \"a\"\ndenominator = \"a\"\nprior_mean = 0"),
            &["'r'", "'prior_weight'", "missing"],
        ),
        (computed("d", "op = \"days_since\"\ninput = \"a\"\ncmp = \">\"\ndefault = 1"), &["'d'", "'op'", "'cmp'"]),
        (computed("d", "op = \"mean\""), &["'d'", "'op'", "'mean'"]),
        (computed("d", "op = \"threshold\"\ninput = \"a\"\ncmp = \"=<\"\nvalue = 1"), &["'d'", "'cmp'", "'=<'"]),
        (computed("d", "op = \"threshold\"\ninput = \"a\"\ncmp = \"<\"\nvalue = inf"), &["'d'", "'value'", "finite"]),
        (computed("d", "input = \"a\""), &["'d'", "'op'", "missing"]),
        (feature("a", "colour = 1"), &["unknown field", "colour"]),
        (feature("a", "on_event = \"view\"\nupdate = \"count\""), &["'a'", "'on_event'", "'view'"]),
        (feature("a", "on_event = \"click\""), &["'a'", "'update'", "missing"]),
        (feature("a", "on_event = \"click\"\nupdate = \"set_time\""), &["'a'", "'update'", "timestamp"]),
        (feature("a", "on_event = \"click\"\nupdate = \"add_value\""), &["'a'", "'update'", "conversion"]),
        (format!("{ts}on_event = \"click\"\nupdate = \"count\"\n"), &["'t'", "'update'", "number"]),
    ];
    for (toml, words) in cases {
        let message = refuse(&toml);
        for word in words {
            assert!(
                message.contains(word),
                "'{word}' not in: {message}\n---\n{toml}"
            );
        }
    }
}

#[test]
fn limits_are_checked() {
    let many: String = (0..65).map(|i| feature(&format!("f{i}"), "")).collect();
    let e = Definitions::from_toml_str(&many).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded {
                value: 65,
                limit: 64,
                ..
            }
        ),
        "{e}"
    );
    let big = format!("# {}\n", "x".repeat(1 << 20));
    assert!(matches!(
        Definitions::from_toml_str(&big).unwrap_err(),
        Error::LimitExceeded { .. }
    ));
    let long = "a".repeat(65);
    assert!(refuse(&feature(&long, "")).contains("at most 64 bytes"));
    let labels: Vec<String> = (0..257).map(|i| format!("\"l{i}\"")).collect();
    let cats = feature("c", &format!("categories = [{}]", labels.join(",")))
        .replace("\"i64\"", "\"category\"")
        .replace("default = 0", "default = \"l0\"");
    assert!(refuse(&cats).contains("257 labels"));
}

#[test]
fn an_empty_file_is_empty_definitions() {
    let defs = Definitions::from_toml_str("").unwrap();
    assert!(defs.is_empty());
    assert_eq!(defs.id().len(), 16);
}

#[test]
fn the_example_in_the_features_docs_validates() {
    let doc = include_str!("../../../docs/FEATURES.md");
    let section = &doc[doc.find("## Online feature store").expect("the section")..];
    let start = section.find("```toml\n").expect("an example") + "```toml\n".len();
    let end = start + section[start..].find("```").expect("closed");
    let defs = Definitions::from_toml_str(&section[start..end]).expect("valid");
    assert_eq!((defs.stored().len(), defs.computed().len()), (4, 3));
}
