//! Metric key results read from a local spreadsheet file, on SQLite and PostgreSQL.

use std::sync::Arc;

use okrsync::sync::Mode;

use crate::both_backends;
use crate::helpers::{fresh_database, Db};

const OKRS: &str = r#"
[[objective]]
id = "money"
title = "Healthy revenue"
period = "2026-Q4"

[[objective.kr]]
id = "money.mrr"
title = "EMEA MRR from 1.2M to 2M"
measure = "metric"
metric = { source = "finance", sheet = "metrics", row = "MRR EMEA", column = "Value" }
start = 1200000
target = 2000000

[[objective.kr]]
id = "money.churn"
title = "Churn from 5% to 3%"
measure = "metric"
metric = { source = "finance", cell = "B3" }
start = 5
target = 3
"#;

fn csv(mrr: &str, churn: &str) -> String {
    format!("Metric,Value,Note\nMRR EMEA,\"{mrr}\",monthly\nChurn,{churn},%\n")
}

async fn metric_krs_read_cells_and_labels_and_go_stale_on_a_bad_cell(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let db_url = fresh_database(db, dir.path()).await;
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(dir.path().join("okrs/money.toml"), OKRS).expect("okrs");
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "4%")).expect("csv");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        format!("[database]\nurl = \"{db_url}\"\n[log]\nlevel = \"warn\"\n[sources.finance]\nkind = \"sheet\"\npath = \"metrics.csv\"\nevery = \"1h\"\n"),
    )
    .expect("config");
    let engine = crate::helpers::engine_for(&dir.path().join("okrsync.toml")).await;
    let settings = engine.settings().clone();

    let run = engine
        .sync_source("finance", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    let state = |id: &'static str| {
        let store = engine.store().clone();
        async move { store.kr_state(id).await.expect("read").expect("kr") }
    };
    // (1.6M − 1.2M) / (2M − 1.2M) = 0.5; churn (4 − 5) / (3 − 5) = 0.5.
    let mrr = state("money.mrr").await;
    assert_eq!((mrr.current, mrr.progress), (Some(1_600_000.0), 0.5));
    let churn = state("money.churn").await;
    assert_eq!((churn.current, churn.progress), (Some(4.0), 0.5));

    // Unchanged file: nothing new is written.
    let again = engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!((again.changed, again.krs_changed), (0, 0));

    // Churn beats the target: progress clamps to 1, current does not.
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "2.5")).expect("csv");
    engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    let churn = state("money.churn").await;
    assert_eq!((churn.current, churn.progress), (Some(2.5), 1.0));
    let history: Vec<Option<f64>> = engine
        .store()
        .history("money.churn", 10)
        .await
        .expect("history")
        .iter()
        .map(|h| h.current)
        .collect();
    assert_eq!(
        history,
        vec![None, Some(4.0), Some(2.5)],
        "before any observation, then each value"
    );

    // An emptied cell is an error on its KR: stale with the reason, never a silent zero.
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "")).expect("csv");
    engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    let doc = okrsync::report::status(engine.store(), &settings, chrono::Utc::now())
        .await
        .expect("status");
    let churn = &doc.objectives[0].key_results[1];
    assert_eq!(churn.status, okrsync::model::Status::Stale);
    assert!(
        churn
            .status_reason
            .as_deref()
            .unwrap_or("")
            .contains("B3 is empty"),
        "{:?}",
        churn.status_reason
    );
    assert_eq!(churn.current, Some(2.5), "the last good value stays");
    assert_ne!(
        doc.objectives[0].key_results[0].status,
        okrsync::model::Status::Stale
    );
}
both_backends!(metric_krs_read_cells_and_labels_and_go_stale_on_a_bad_cell);

/// Writes a minimal `.xlsx` (Office Open XML) with one sheet of inline strings and numbers.
fn write_xlsx(path: &std::path::Path, sheet: &str, rows: &[&[&str]]) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create xlsx");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    let mut put = |name: &str, body: String| {
        zip.start_file(name, opts).expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    };
    put("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into());
    put("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into());
    put(
        "xl/workbook.xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#
        ),
    );
    put("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into());
    let mut data = String::new();
    for (r, row) in rows.iter().enumerate() {
        data.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, v) in row.iter().enumerate() {
            let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
            if v.parse::<f64>().is_ok() {
                data.push_str(&format!("<c r=\"{at}\"><v>{v}</v></c>"));
            } else if !v.is_empty() {
                data.push_str(&format!(
                    "<c r=\"{at}\" t=\"inlineStr\"><is><t>{v}</t></is></c>"
                ));
            }
        }
        data.push_str("</row>");
    }
    put(
        "xl/worksheets/sheet1.xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
        ),
    );
    zip.finish().expect("finish xlsx");
}

/// Writes a minimal `.ods` (OpenDocument spreadsheet) with one table.
fn write_ods(path: &std::path::Path, sheet: &str, rows: &[&[&str]]) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create ods");
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).expect("mimetype");
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .expect("write");
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("META-INF/manifest.xml", opts)
        .expect("manifest");
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).expect("write");
    let mut table = String::new();
    for row in rows {
        table.push_str("<table:table-row>");
        for v in row.iter() {
            if v.parse::<f64>().is_ok() {
                table.push_str(&format!("<table:table-cell office:value-type=\"float\" office:value=\"{v}\"><text:p>{v}</text:p></table:table-cell>"));
            } else if v.is_empty() {
                table.push_str("<table:table-cell/>");
            } else {
                table.push_str(&format!("<table:table-cell office:value-type=\"string\"><text:p>{v}</text:p></table:table-cell>"));
            }
        }
        table.push_str("</table:table-row>");
    }
    zip.start_file("content.xml", opts).expect("content");
    zip.write_all(format!(r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="{sheet}">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#).as_bytes()).expect("write");
    zip.finish().expect("finish ods");
}

#[test]
fn xlsx_and_ods_files_are_read_by_cell_and_by_labels() {
    use okrsync::sources::sheet::{Reference, Workbook};
    let dir = tempfile::tempdir().expect("dir");
    let rows: &[&[&str]] = &[
        &["Metric", "Value"],
        &["MRR EMEA", "1450000"],
        &["Churn", "4.2%"],
        &["NPS", ""],
    ];
    write_xlsx(&dir.path().join("metrics.xlsx"), "Metrics", rows);
    write_ods(&dir.path().join("metrics.ods"), "Metrics", rows);
    for file in ["metrics.xlsx", "metrics.ods"] {
        let book = Workbook::open(&dir.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let n = |r: &str| book.number(&Reference::parse(r).expect("reference"));
        assert_eq!(n("Metrics!B2"), Ok(1_450_000.0), "{file}");
        assert_eq!(n("Metrics[row=Churn][column=Value]"), Ok(4.2), "{file}");
        assert!(
            n("Metrics!B4").expect_err("empty").contains("is empty"),
            "{file}"
        );
        assert!(
            n("Sheet9!A1")
                .expect_err("no sheet")
                .contains("sheets: Metrics"),
            "{file}"
        );
    }
    // A half-written file is explained, not a crash.
    std::fs::write(dir.path().join("broken.xlsx"), b"PK\x03\x04 truncated").expect("write");
    let err = Workbook::open(&dir.path().join("broken.xlsx")).expect_err("broken");
    assert!(err.contains("locked or half-written"), "{err}");
}

async fn a_csv_over_http_feeds_a_metric_kr(db: Db) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A published CSV whose first answer is a transient 500.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/pub",
        axum::routing::get(move || {
            let h = h.clone();
            async move {
                if h.fetch_add(1, Ordering::SeqCst) == 0 {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
                } else {
                    ([("content-type", "text/csv")], csv("1,600,000", "4")).into_response()
                }
            }
        }),
    );
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("dir");
    let db_url = fresh_database(db, dir.path()).await;
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(
        dir.path().join("okrs/money.toml"),
        OKRS.replace("sheet = \"metrics\", row", "row"),
    )
    .expect("okrs");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        format!("[database]\nurl = \"{db_url}\"\n[log]\nlevel = \"warn\"\n[sources.finance]\nkind = \"sheet\"\ncsv_url = \"http://{addr}/pub?output=csv\"\nretry_backoff = \"10ms\"\n"),
    )
    .expect("config");
    let engine = crate::helpers::engine_for(&dir.path().join("okrsync.toml")).await;
    let run = engine
        .sync_source("finance", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.requests),
        ("ok", 2),
        "{:?}",
        run.error
    );
    let mrr = engine
        .store()
        .kr_state("money.mrr")
        .await
        .expect("read")
        .expect("kr");
    assert_eq!((mrr.current, mrr.progress), (Some(1_600_000.0), 0.5));
}
both_backends!(a_csv_over_http_feeds_a_metric_kr);

#[test]
fn a_real_drive_export_csv_parses() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sheets/drive-export.gspread.csv"
    ))
    .expect("fixture");
    let book = okrsync::sources::sheet::Workbook::from_csv("Sheet1", &bytes[..]).expect("csv");
    assert_eq!(
        book.sheets[0].rows,
        vec![vec![
            okrsync::sources::sheet::Cell::Text("a1".into()),
            okrsync::sources::sheet::Cell::Text("B2".into())
        ]]
    );
}

async fn google_sheets_by_api_key_and_by_service_account(db: Db) {
    use okrsync::simulator::sheets::{Fault, SheetsSim};
    use serde_json::json;
    let sim = SheetsSim::start()
        .await
        .expect("start the Sheets simulator");
    sim.allow_api_key("AIza-sim");
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github-app");
    let public =
        std::fs::read_to_string(format!("{keys}/test-app-key.pub.pem")).expect("public key");
    let private = std::fs::read_to_string(format!("{keys}/test-app-key.pem")).expect("private key");
    sim.allow_service_account("okrsync@project.iam.gserviceaccount.com", &public);
    sim.set_sheet(
        "SHEET1",
        "metrics",
        vec![
            vec![json!("Metric"), json!("Value")],
            vec![json!("MRR EMEA"), json!(1_600_000)],
            vec![json!("Churn"), json!("4%")],
        ],
    );

    for (n, auth) in [
        "api_key_file = \"api-key\"",
        "service_account_file = \"account.json\"",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().expect("dir");
        let db_url = fresh_database(db, dir.path()).await;
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
        // The churn reference names no sheet: it reads the first one.
        std::fs::write(dir.path().join("okrs/money.toml"), OKRS).expect("okrs");
        std::fs::write(dir.path().join("api-key"), "AIza-sim").expect("key");
        std::fs::write(
            dir.path().join("account.json"),
            json!({
                "type": "service_account",
                "client_email": "okrsync@project.iam.gserviceaccount.com",
                "private_key": private,
                "token_uri": sim.token_url(),
            })
            .to_string(),
        )
        .expect("account");
        std::fs::write(
            dir.path().join("okrsync.toml"),
            format!(
                "[database]\nurl = \"{db_url}\"\n[log]\nlevel = \"warn\"\n[sources.finance]\nkind = \"sheet\"\ngoogle_sheet_id = \"SHEET1\"\napi_url = \"{}\"\n{auth}\nretry_backoff = \"10ms\"\n",
                sim.api_url()
            ),
        )
        .expect("config");
        let engine = crate::helpers::engine_for(&dir.path().join("okrsync.toml")).await;
        if n == 0 {
            sim.fail_next(Fault::Status {
                status: 429,
                retry_after: None,
                body: None,
            });
        }
        let before = sim.requests().len();
        let run = engine
            .sync_source("finance", Mode::Full)
            .await
            .expect("sync");
        assert_eq!(run.outcome, "ok", "{auth}: {:?}", run.error);
        let mrr = engine
            .store()
            .kr_state("money.mrr")
            .await
            .expect("read")
            .expect("kr");
        let churn = engine
            .store()
            .kr_state("money.churn")
            .await
            .expect("read")
            .expect("kr");
        assert_eq!(
            (mrr.current, mrr.progress),
            (Some(1_600_000.0), 0.5),
            "{auth}"
        );
        assert_eq!((churn.current, churn.progress), (Some(4.0), 0.5), "{auth}");
        let made: Vec<(String, String, u16)> = sim.requests()[before..].to_vec();
        let batch = made
            .iter()
            .filter(|(_, p, s)| p.ends_with("values:batchGet") && *s == 200)
            .count();
        assert_eq!(batch, 1, "one batched request per sync: {made:?}");
        if n == 1 {
            assert_eq!(
                made[0].1, "/token",
                "the service account gets a token first"
            );
            engine
                .sync_source("finance", Mode::Incremental)
                .await
                .expect("sync");
            let tokens = sim
                .requests()
                .iter()
                .filter(|(_, p, _)| p == "/token")
                .count();
            assert_eq!(tokens, 1, "the access token is cached");
        }
    }
}
both_backends!(google_sheets_by_api_key_and_by_service_account);

async fn portfolio_rows_are_items_for_moves_and_unaligned(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let db_url = fresh_database(db, dir.path()).await;
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(
        dir.path().join("okrs/portfolio.toml"),
        r#"
[[objective]]
id = "growth"
title = "Grow"
period = "2026-Q4"

[[objective.kr]]
id = "growth.projects"
title = "Growth projects delivered"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "growth-theme"
kr = "growth.projects"
source = "portfolio"
[rule.match]
"fields.Theme" = "Growth"
"#,
    )
    .expect("okrs");
    let sheet = |rows: &str| format!("Project,Name,Status,Budget,Theme\n{rows}");
    std::fs::write(
        dir.path().join("Projects.csv"),
        sheet("P-1,EMEA checkout,In progress,\"120,000\",Growth\nP-2,Partner portal,Done,80000,Growth\nP-3,Office move,In progress,50000,Facilities\nP-4,Data lake,Proposed,200000,Growth\n"),
    )
    .expect("csv");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        format!("[database]\nurl = \"{db_url}\"\n[log]\nlevel = \"warn\"\n[sources.portfolio]\nkind = \"sheet\"\npath = \"Projects.csv\"\nitems = {{ key = \"Project\", title = \"Name\", category = \"Status\", estimate = \"Budget\" }}\n"),
    )
    .expect("config");
    let engine = crate::helpers::engine_for(&dir.path().join("okrsync.toml")).await;
    let settings = engine.settings().clone();
    let mode = engine.next_mode("portfolio").await.expect("mode");
    let run = engine.sync_source("portfolio", mode).await.expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.fetched),
        ("ok", 4),
        "{:?}",
        run.error
    );
    // Growth rows by budget: done 80,000 of 120,000 + 80,000 + 200,000.
    let k = engine
        .store()
        .kr_state("growth.projects")
        .await
        .expect("read")
        .expect("kr");
    assert_eq!((k.current, k.target), (Some(80_000.0), Some(400_000.0)));
    let moves = okrsync::report::moves(engine.store(), &settings, "project=Projects")
        .await
        .expect("moves");
    assert_eq!((moves.items, moves.key_results[0].items), (4, 3));
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-15T12:00:00Z")
        .expect("t")
        .with_timezone(&chrono::Utc);
    let un = okrsync::report::unaligned(engine.store(), &settings, Some("2026-Q4"), now)
        .await
        .expect("unaligned");
    assert_eq!(
        un.items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        vec!["P-3"],
        "the office move moves no KR"
    );
    assert_eq!(un.by_project[0].unaligned_estimate, 50_000.0);

    // Unchanged: nothing written. A removed row goes (every sheet pass is full).
    let again = engine
        .sync_source(
            "portfolio",
            engine.next_mode("portfolio").await.expect("mode"),
        )
        .await
        .expect("sync");
    assert_eq!((again.changed, again.deleted), (0, 0));
    std::fs::write(
        dir.path().join("Projects.csv"),
        sheet("P-1,EMEA checkout,In progress,\"120,000\",Growth\nP-2,Partner portal,Done,80000,Growth\nP-3,Office move,In progress,50000,Facilities\n"),
    )
    .expect("csv");
    let removed = engine
        .sync_source(
            "portfolio",
            engine.next_mode("portfolio").await.expect("mode"),
        )
        .await
        .expect("sync");
    assert_eq!(removed.deleted, 1);
    let k = engine
        .store()
        .kr_state("growth.projects")
        .await
        .expect("read")
        .expect("kr");
    assert_eq!(k.target, Some(200_000.0));
}
both_backends!(portfolio_rows_are_items_for_moves_and_unaligned);
