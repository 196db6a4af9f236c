//! The CSV form of synthetic click logs: the documented header, an exact
//! round trip of generated rows, and errors that name the line and column.

use cx_datasets::synth::{
    parse_csv_row, read_csv, write_csv, CsvWriter, Os, CSV_COLUMNS, CSV_HEADER, CSV_LINE_BYTES_MAX,
};
use cx_datasets::{Error, Generator, SynthConfig, SynthRow};

fn sample(n: usize) -> Vec<SynthRow> {
    let mut generator = Generator::new(SynthConfig::default(), 77).unwrap();
    let mut rows = Vec::new();
    generator.fill(&mut rows, n).unwrap();
    rows
}

fn csv_of(rows: &[SynthRow]) -> String {
    let mut out = Vec::new();
    write_csv(rows, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A hand-made row with every field distinct from its neighbours.
fn known_row() -> SynthRow {
    SynthRow {
        user_id: 123_456_789,
        segments: vec![3, 17],
        device_type: 4,
        os: Os::Ios,
        conn_type: 6,
        country: "GBR".into(),
        region: "ENG".into(),
        site_or_app_id: "app-12".into(),
        is_app: true,
        domain: "topnews.co.uk".into(),
        categories: vec!["IAB12".into(), "IAB12-2".into()],
        width: 320,
        height: 50,
        position: 5,
        bid_floor: 0.37,
        ts_unix: 1_735_700_000,
        offer_id: 1003,
        click: true,
        p_true: 0.0625,
    }
}

#[test]
fn header_and_a_known_row_have_the_documented_layout() {
    let text = csv_of(&[known_row()]);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "user_id,segments,device_type,os,conn_type,country,region,site_or_app_id,is_app,domain,\
             categories,width,height,position,bid_floor,ts_unix,offer_id,click,p_true"
        )
    );
    assert_eq!(
        lines.next(),
        Some("123456789,3|17,4,ios,6,GBR,ENG,app-12,1,topnews.co.uk,IAB12|IAB12-2,320,50,5,0.37,1735700000,1003,1,0.0625")
    );
    assert_eq!(lines.next(), None);
    assert!(text.ends_with('\n'));
    assert_eq!(CSV_HEADER.split(',').collect::<Vec<_>>(), CSV_COLUMNS);
    assert_eq!(
        parse_csv_row(text.lines().nth(1).unwrap(), 2).unwrap(),
        known_row()
    );
}

#[test]
fn generated_rows_round_trip_exactly() {
    let rows = sample(2000);
    let text = csv_of(&rows);
    assert_eq!(text.lines().count(), 2001);
    assert!(
        text.lines()
            .all(|l| l.split(',').count() == CSV_COLUMNS.len()),
        "no value holds a comma"
    );
    let back = read_csv(text.as_bytes(), 2000).unwrap();
    assert_eq!(
        back, rows,
        "every field, floats included, parses back bit for bit"
    );
    // CRLF line ends read the same.
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(read_csv(crlf.as_bytes(), 2000).unwrap(), rows);
}

#[test]
fn the_streaming_writer_matches_write_csv() {
    let rows = sample(50);
    let mut writer = CsvWriter::new(Vec::new()).unwrap();
    for row in &rows {
        writer.write_row(row).unwrap();
    }
    assert_eq!(
        String::from_utf8(writer.into_inner().unwrap()).unwrap(),
        csv_of(&rows)
    );
}

#[test]
fn text_that_would_break_the_layout_is_refused_on_write() {
    for (column, edit) in [
        (
            "domain",
            Box::new(|r: &mut SynthRow| r.domain = "a,b.com".into()) as Box<dyn Fn(&mut SynthRow)>,
        ),
        (
            "categories",
            Box::new(|r: &mut SynthRow| r.categories.push("IAB1|IAB2".into())),
        ),
        (
            "region",
            Box::new(|r: &mut SynthRow| r.region = "N\nY".into()),
        ),
        (
            "site_or_app_id",
            Box::new(|r: &mut SynthRow| r.site_or_app_id = "\"x\"".into()),
        ),
    ] {
        let mut row = known_row();
        edit(&mut row);
        let mut writer = CsvWriter::new(Vec::new()).unwrap();
        let err = writer.write_row(&row).unwrap_err();
        assert!(
            matches!(&err, Error::SynthCsv { line: 2, column: c, .. } if *c == column),
            "{column}: {err:?}"
        );
        assert_eq!(
            writer.into_inner().unwrap(),
            format!("{CSV_HEADER}\n").into_bytes(),
            "nothing written"
        );
    }
}

/// Parses `line` with `column`'s field replaced by `value`, expecting an error naming `column`.
fn refused(column: &str, value: &str) -> Error {
    let text = csv_of(&[known_row()]);
    let line = text.lines().nth(1).unwrap();
    let mut fields: Vec<&str> = line.split(',').collect();
    let at = CSV_COLUMNS.iter().position(|c| *c == column).unwrap();
    fields[at] = value;
    let err = parse_csv_row(&fields.join(","), 7).unwrap_err();
    match &err {
        Error::SynthCsv {
            line: 7, column: c, ..
        } if *c == column => err,
        _ => panic!("{column}={value:?}: {err:?}"),
    }
}

#[test]
fn bad_fields_are_refused_naming_line_and_column() {
    refused("user_id", "-1");
    refused("segments", "3|x");
    refused("device_type", "256");
    refused("os", "beos");
    refused("is_app", "yes");
    refused("width", "");
    refused("bid_floor", "NaN");
    refused("bid_floor", "-0.5");
    refused("ts_unix", "1.5");
    refused("click", "2");
    let err = refused("p_true", "1.5");
    assert!(
        err.to_string().contains("line 7") && err.to_string().contains("p_true"),
        "{err}"
    );
    let short = parse_csv_row("1,2,3", 4).unwrap_err();
    assert!(
        matches!(short, Error::SynthCsv { line: 4, .. }) && short.to_string().contains("3 columns"),
        "{short}"
    );
}

#[test]
fn read_csv_checks_the_header_and_its_limits() {
    let text = csv_of(&sample(10));
    let renamed = text.replacen("p_true", "prob", 1);
    let err = read_csv(renamed.as_bytes(), 100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SynthCsv {
                line: 1,
                column: "p_true",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        read_csv(&b""[..], 100),
        Err(Error::SynthCsv { line: 1, .. })
    ));

    let err = read_csv(text.as_bytes(), 9).unwrap_err();
    assert!(
        matches!(err, Error::LimitExceeded { limit: 9, .. }),
        "{err:?}"
    );
    assert_eq!(read_csv(text.as_bytes(), 10).unwrap().len(), 10);

    let long = format!("{CSV_HEADER}\n{}\n", "9".repeat(CSV_LINE_BYTES_MAX + 10));
    let err = read_csv(long.as_bytes(), 10).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");

    // An empty line after the header: the first missing column is named.
    let broken = text.replacen('\n', "\n\n", 1);
    let err = read_csv(broken.as_bytes(), 100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SynthCsv {
                line: 2,
                column: "segments",
                ..
            }
        ),
        "an empty line is an error: {err:?}"
    );
}
