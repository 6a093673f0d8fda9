//! The HTTP server of `okrsync run`, started on port 0 and driven over real HTTP.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{issue, minute, Db, Served, SourceOpts, TestEnv, API_TOKEN};

const OKRS: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the work"
measure = "completion"

[[objective.kr]]
id = "o.nps"
title = "NPS"
measure = "manual"
target = 50

[[rule]]
id = "all-pay"
kr = "o.done"
[rule.match]
project = "PAY"
"#;

async fn routes_answer_with_the_cli_documents(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed([
        issue(
            1,
            "PAY-1",
            "A",
            "done",
            None,
            &[],
            minute(9, 0),
            Some(minute(9, 0)),
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    let served = Served::start(&env).await;
    let base = served.base.clone();
    let http = served.http.clone();
    let get_json = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let resp = req.send().await.expect("get");
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );

    let (status, objectives) = get_json("/api/v1/objectives").await;
    assert_eq!(status, 200);
    let kr = &objectives["objectives"][0]["key_results"][0];
    assert_eq!(
        (
            kr["id"].clone(),
            kr["current"].clone(),
            kr["target"].clone()
        ),
        (json!("o.done"), json!(1.0), json!(2.0))
    );
    let (status, explain) = get_json("/api/v1/key-results/o.done").await;
    assert_eq!(status, 200);
    assert_eq!(explain["items"].as_array().map(Vec::len), Some(2));
    let (status, missing) = get_json("/api/v1/key-results/nope").await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap_or("").contains("nope"));
    let (status, moves) = get_json("/api/v1/moves?selector=project=PAY").await;
    assert_eq!((status, moves["items"].clone()), (200, json!(2)));
    assert_eq!(get_json("/api/v1/moves?selector=team=x").await.0, 400);
    assert_eq!(get_json("/api/v1/moves").await.0, 400);
    let (status, unaligned) = get_json("/api/v1/unaligned?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert_eq!(unaligned["periods"], json!(["2026-Q4"]));

    // Prometheus metrics, from the store.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = metrics.text().await.expect("text");
    for line in [
        "okrsync_sync_runs_total{source=\"jira\",outcome=\"ok\"} 1",
        "okrsync_items{source=\"jira\"} 2",
        "okrsync_source_up{source=\"jira\"} 1",
        "okrsync_kr_progress{kr=\"o.done\",objective=\"o\",status=",
        "okrsync_kr_current{kr=\"o.done\"} 1",
        "# TYPE okrsync_unaligned_share gauge",
        // This process's own requests upstream (the sync above made some).
        "okrsync_upstream_requests_total{source=\"jira\",status=\"200\"} ",
        "# TYPE okrsync_upstream_request_duration_seconds histogram",
        "okrsync_upstream_request_duration_seconds_bucket{source=\"jira\",le=\"+Inf\"} ",
        "okrsync_upstream_request_duration_seconds_count{source=\"jira\"} ",
        "# TYPE okrsync_upstream_rate_limit_remaining gauge",
    ] {
        assert!(text.contains(line), "missing «{line}» in:\n{text}");
    }

    // Writes need the bearer token.
    let url = format!("{base}/api/v1/key-results/o.nps/checkins");
    let refused = http
        .post(&url)
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);
    let wrong = http
        .post(&url)
        .bearer_auth("nope")
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(&url)
        .bearer_auth(API_TOKEN)
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 201);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(
        (body["current"].clone(), body["progress"].clone()),
        (json!(25.0), json!(0.5))
    );
    let not_manual = http
        .post(format!("{base}/api/v1/key-results/o.done/checkins"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"value": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(not_manual.status(), 422);
    let sync = http
        .post(format!("{base}/api/v1/sync"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(sync.status(), 200);
    served.stop().await;
}
both_backends!(routes_answer_with_the_cli_documents);

fn seeded_env_issues() -> Vec<okrsync::simulator::jira::SimIssue> {
    vec![
        issue(
            1,
            "PAY-1",
            "Checkout <b>v2</b>",
            "done",
            Some(3.0),
            &[],
            minute(9, 0),
            Some(minute(9, 0)),
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            Some(2.0),
            &[],
            minute(9, 1),
            None,
        ),
        issue(
            3,
            "WEB-7",
            "<script>alert('owned')</script>",
            "in_progress",
            Some(5.0),
            &[],
            minute(9, 2),
            None,
        ),
    ]
}

async fn json_reads_have_etags_and_an_openapi_document(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(seeded_env_issues());
    let s = Served::start(&env).await;

    // ETag: the same document answers 304 to If-None-Match, a change gives a new tag.
    let first = s.get("/api/v1/objectives").await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let again = s
        .http
        .get(format!("{}/api/v1/objectives", s.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().expect("ascii"), etag);
    assert!(again.bytes().await.expect("body").is_empty());
    let checkin = s
        .http
        .post(format!("{}/api/v1/key-results/o.nps/checkins", s.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"value": 10, "note": "survey"}))
        .send()
        .await
        .expect("post");
    assert_eq!(checkin.status(), 201);
    let changed = s
        .http
        .get(format!("{}/api/v1/objectives", s.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().expect("ascii"), etag);
    for path in [
        "/api/v1/key-results/o.done",
        "/api/v1/moves?selector=project=PAY",
        "/api/v1/unaligned",
        "/api/v1/sources",
    ] {
        let resp = s.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().contains_key("etag"), "{path} has no ETag");
    }

    // Sources: last sync, outcome and item counts.
    let sources: serde_json::Value = s.get("/api/v1/sources").await.json().await.expect("json");
    let jira = &sources["sources"][0];
    assert_eq!(
        (
            jira["name"].clone(),
            jira["kind"].clone(),
            jira["last_outcome"].clone(),
            jira["items"].clone(),
            jira["every_seconds"].clone()
        ),
        (
            json!("jira"),
            json!("jira"),
            json!("ok"),
            json!(3),
            json!(60)
        )
    );
    assert_eq!(jira["recent_runs"][0]["mode"], json!("full"));
    assert!(jira["next_run"].is_string());

    // Unaligned: shares of items and of estimate per project (WEB-7 moves nothing).
    let unaligned: serde_json::Value = s
        .get("/api/v1/unaligned?period=2026-Q4")
        .await
        .json()
        .await
        .expect("json");
    let web = unaligned["by_project"]
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["project"] == "WEB")
        .expect("WEB")
        .clone();
    assert_eq!(
        (
            web["items"].clone(),
            web["unaligned"].clone(),
            web["estimate"].clone(),
            web["estimate_share"].clone()
        ),
        (json!(1), json!(1), json!(5.0), json!(1.0))
    );
    // The KR lists the sources it reads.
    let objectives: serde_json::Value = changed.json().await.expect("json");
    assert_eq!(
        objectives["objectives"][0]["key_results"][0]["sources"],
        json!(["jira"])
    );

    // OpenAPI 3, generated from the handlers: every route and the document schemas.
    let doc: serde_json::Value = s
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    for path in [
        "/api/v1/objectives",
        "/api/v1/key-results/{id}",
        "/api/v1/key-results/{id}/checkins",
        "/api/v1/moves",
        "/api/v1/unaligned",
        "/api/v1/sources",
        "/api/v1/sync",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    for schema in [
        "StatusDoc",
        "ExplainDoc",
        "MovesDoc",
        "UnalignedDoc",
        "KrStatus",
        "ErrorBody",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "openapi lacks schema {schema}"
        );
    }
    let kr_props = &doc["components"]["schemas"]["KrStatus"]["properties"];
    for field in [
        "id",
        "title",
        "measure",
        "progress",
        "current",
        "start",
        "target",
        "status",
        "items",
        "updated_at",
        "kind",
        "success",
        "confidence",
        "flags",
    ] {
        assert!(kr_props[field].is_object(), "KrStatus lacks {field}");
    }
    for schema in ["Flag", "Confidence"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "openapi lacks schema {schema}"
        );
    }
    assert!(doc["paths"]["/api/v1/sync"]["post"]["security"].is_array());
    s.stop().await;
}
both_backends!(json_reads_have_etags_and_an_openapi_document);

async fn dashboard_pages_render_from_the_store(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(seeded_env_issues());
    let s = Served::start(&env).await;

    let (status, overview) = s.page("/").await;
    assert_eq!(status, 200);
    for text in [
        "Objective",
        "Finish the work",
        "/kr/o.done",
        "1 / 2",
        "updated ",
        "from jira",
    ] {
        assert!(overview.contains(text), "overview lacks «{text}»");
    }
    let (status, kr) = s.page("/kr/o.done").await;
    assert_eq!(status, 200);
    for text in [
        "<svg",
        "<polyline class=\"expected\"",
        "PAY-1",
        "Checkout &#60;b&#62;v2&#60;/b&#62;",
        "all-pay",
        "Recent changes",
    ] {
        assert!(kr.contains(text), "KR page lacks «{text}»:\n{kr}");
    }
    assert!(!kr.contains("<b>v2</b>"), "a title was not escaped");
    assert_eq!(s.page("/kr/nope").await.0, 404);

    let (status, moves) = s.page("/moves?by=project&q=PAY").await;
    assert_eq!(status, 200);
    assert!(moves.contains("project=PAY") && moves.contains("Finish the work"));
    assert!(moves.contains("100%"), "{moves}");
    // The search box suggests the known projects and epics.
    assert!(moves.contains("<option value=\"project=PAY\">"), "{moves}");
    assert!(moves.contains("<option value=\"project=WEB\">"), "{moves}");
    let (status, moves) = s.page("/moves?q=item%3DPAY-2").await;
    assert_eq!(status, 200);
    assert!(moves.contains("item=PAY-2"));
    let (status, bad) = s.page("/moves?q=team%3Dx").await;
    assert_eq!(status, 400);
    assert!(bad.contains("role=\"alert\""));
    assert_eq!(s.page("/moves").await.0, 200);

    let (status, unaligned) = s.page("/unaligned?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert!(unaligned.contains("WEB-7"));
    // The hostile title is text, not markup.
    assert!(unaligned.contains("&#60;script&#62;alert(&#39;owned&#39;)&#60;/script&#62;"));
    assert!(!unaligned.contains("<script>"));
    assert_eq!(s.page("/unaligned?period=someday").await.0, 400);

    let (status, sources) = s.page("/sources").await;
    assert_eq!(status, 200);
    assert!(sources.contains("jira") && sources.contains("✓ OK"));
    let css = s.get("/static/okrsync.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/css"));
    s.stop().await;
}
both_backends!(dashboard_pages_render_from_the_store);

/// Pages list a few hundred rows and offer the rest (a KR moved by 40,000 items would be a
/// 13 MB page); `?all=1` lists everything, and the JSON always has everything.
async fn long_lists_are_cut_with_a_show_all_link(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.sim.upsert_all((1..=520u64).map(|n| {
        let (key, state) = if n <= 510 {
            (format!("PAY-{n}"), "done")
        } else {
            (format!("WEB-{n}"), "in_progress")
        };
        issue(
            n,
            &key,
            "Work",
            state,
            None,
            &[],
            minute(9, 0),
            Some(minute(9, 0)).filter(|_| state == "done"),
        )
    }));
    env.sim.upsert_all((521..=735u64).map(|n| {
        issue(
            n,
            &format!("WEB-{n}"),
            "Unaligned",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        )
    }));
    let s = Served::start(&env).await;

    let (status, kr) = s.page("/kr/o.done").await;
    assert_eq!(status, 200);
    assert!(kr.contains("510 item(s) matched"), "{kr}");
    assert!(kr.contains("Showing the first 500 of 510 items"), "{kr}");
    assert!(kr.contains("href=\"/kr/o.done?all=1#evidence\""));
    assert!(kr.contains(">PAY-500<") && !kr.contains(">PAY-501<"));
    let (_, all) = s.page("/kr/o.done?all=1").await;
    assert!(all.contains(">PAY-510<") && !all.contains("Showing the first"));
    let json: serde_json::Value = s
        .get("/api/v1/key-results/o.done")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(510));

    let (status, unaligned) = s.page("/unaligned?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert!(unaligned.contains("WEB: 225 unaligned"), "{unaligned}");
    assert!(unaligned.contains("… and 25 more."), "{unaligned}");
    assert!(
        unaligned.contains("href=\"/unaligned?period=2026-Q4&#38;all=1#project-WEB\""),
        "{unaligned}"
    );
    let (_, every) = s.page("/unaligned?period=2026-Q4&all=1").await;
    assert_eq!(every.matches("class=\"key\"").count(), 225);
    assert!(!every.contains("more."));
    s.stop().await;
}
both_backends!(long_lists_are_cut_with_a_show_all_link);

async fn reads_can_require_the_token_and_writes_need_one(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace(
            "api_token_file = \"api-token\"",
            "api_token_file = \"api-token\"\nrequire_token_for_reads = true",
        ),
    )
    .expect("write config");
    let s = Served::start(&env).await;
    for path in ["/api/v1/objectives", "/", "/metrics", "/kr/o.done"] {
        let resp = s.get(path).await;
        assert_eq!(resp.status(), 401, "{path}");
        let challenges: Vec<&str> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
    }
    assert_eq!(s.get("/healthz").await.status(), 200);
    assert_eq!(s.get("/readyz").await.status(), 200);
    let bearer = s
        .http
        .get(format!("{}/api/v1/objectives", s.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(bearer.status(), 200);
    let basic = s
        .http
        .get(format!("{}/", s.base))
        .basic_auth("manager", Some(API_TOKEN))
        .send()
        .await
        .expect("get");
    assert_eq!(basic.status(), 200);
    let wrong = s
        .http
        .get(format!("{}/", s.base))
        .basic_auth("manager", Some("guess"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), 401);
    s.stop().await;

    // Without a token, writes are disabled (403), not open; reads stay open.
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config
            .replace("api_token_file = \"api-token\"\n", "")
            .replace("require_token_for_reads = true\n", ""),
    )
    .expect("write config");
    let s = Served::start(&env).await;
    assert_eq!(s.get("/api/v1/objectives").await.status(), 200);
    for path in ["/api/v1/sync", "/api/v1/key-results/o.nps/checkins"] {
        let resp = s
            .http
            .post(format!("{}{path}", s.base))
            .bearer_auth(API_TOKEN)
            .json(&json!({"value": 1}))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 403, "{path}");
    }
    s.stop().await;
}
both_backends!(reads_can_require_the_token_and_writes_need_one);

/// `/metrics` keeps the unaligned shares between scrapes (they read every started item)
/// but never past a sync step that can change them.
async fn metrics_follow_a_sync_after_a_cached_scrape(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed([
        issue(
            1,
            "PAY-1",
            "Paid",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        issue(
            2,
            "WEB-1",
            "Web",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
    ]);
    let s = Served::start(&env).await;
    let scrape = || async { s.get("/metrics").await.text().await.expect("metrics") };
    let web = "okrsync_unaligned_share{project=\"WEB\"} 1";
    assert!(scrape().await.contains(web));
    assert!(
        scrape().await.contains(web),
        "a cached scrape lost the share"
    );

    // WEB-1 goes back to the backlog: WEB has no current work any more.
    env.sim.edit("WEB-1", |i| {
        i.status = "To Do".into();
        i.status_category = "new".into();
    });
    let synced = s
        .http
        .post(format!("{}/api/v1/sync", s.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("sync");
    assert_eq!(synced.status(), 200);
    let after = scrape().await;
    assert!(!after.contains("project=\"WEB\""), "{after}");
    assert!(
        after.contains("okrsync_unaligned_share{project=\"PAY\"} 0"),
        "{after}"
    );
    s.stop().await;
}
both_backends!(metrics_follow_a_sync_after_a_cached_scrape);

/// What a write route answers, in a few lines: the status, the headers that matter and the
/// body (a page's heading and message; nothing of a success's body but its status).
async fn answer(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let mut out = format!("{status}");
    for name in [
        "content-type",
        "www-authenticate",
        "location",
        "x-frame-options",
    ] {
        for v in resp.headers().get_all(name) {
            out.push_str(&format!(" | {name}: {}", v.to_str().unwrap_or("?")));
        }
    }
    let body = resp.text().await.expect("body");
    if (200..300).contains(&status) || body.is_empty() {
        return out;
    }
    let between = |from: &str, to: &str| {
        body.split_once(from)
            .and_then(|(_, rest)| rest.split_once(to))
            .map(|(inner, _)| inner.to_string())
    };
    match (between("<h1>", "</h1>"), between("role=\"alert\">", "</p>")) {
        (Some(h1), Some(message)) => out.push_str(&format!(" | {h1}: {message}")),
        _ => out.push_str(&format!(" | {body}")),
    }
    out
}

/// Every write route answers only with the API token, and each refusal says why: JSON with
/// both challenges from the API, a page from the dashboard's form; 403 when no token is
/// configured. A form that is not one is refused as the form's reader refuses it.
async fn write_routes_answer_only_with_the_token(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut seen = Vec::new();
    for enabled in [true, false] {
        if !enabled {
            let config = std::fs::read_to_string(&env.config).expect("config");
            std::fs::write(
                &env.config,
                config.replace("api_token_file = \"api-token\"\n", ""),
            )
            .expect("write config");
        }
        let s = Served::start(&env).await;
        let url = |path: &str| format!("{}{path}", s.base);
        let checkins = url("/api/v1/key-results/o.nps/checkins");
        let form = url("/kr/o.nps/checkin");
        let requests = [
            ("sync, no token", s.http.post(url("/api/v1/sync"))),
            (
                "sync, wrong token",
                s.http.post(url("/api/v1/sync")).bearer_auth("guess"),
            ),
            (
                "sync, wrong basic password",
                s.http
                    .post(url("/api/v1/sync"))
                    .basic_auth("manager", Some("guess")),
            ),
            (
                "sync, basic password",
                s.http
                    .post(url("/api/v1/sync"))
                    .basic_auth("manager", Some(API_TOKEN)),
            ),
            (
                "sync, GET",
                s.http.get(url("/api/v1/sync")).bearer_auth(API_TOKEN),
            ),
            (
                "check-in, no token",
                s.http.post(&checkins).json(&json!({"value": 1})),
            ),
            (
                "check-in, wrong token",
                s.http
                    .post(&checkins)
                    .bearer_auth("guess")
                    .json(&json!({"value": 1})),
            ),
            (
                "check-in, wrong token, not JSON",
                s.http
                    .post(&checkins)
                    .bearer_auth("guess")
                    .header("content-type", "text/plain")
                    .body("42"),
            ),
            (
                "check-in, no body",
                s.http.post(&checkins).bearer_auth(API_TOKEN),
            ),
            (
                "check-in, not JSON",
                s.http
                    .post(&checkins)
                    .bearer_auth(API_TOKEN)
                    .header("content-type", "text/plain")
                    .body("42"),
            ),
            (
                "check-in, value",
                s.http
                    .post(&checkins)
                    .bearer_auth(API_TOKEN)
                    .json(&json!({"value": 20})),
            ),
            (
                "form, wrong token",
                s.http
                    .post(&form)
                    .form(&[("value", "31"), ("token", "nope")]),
            ),
            (
                "form, no token field",
                s.http.post(&form).form(&[("value", "31")]),
            ),
            (
                "form, token in the header only",
                s.http
                    .post(&form)
                    .bearer_auth(API_TOKEN)
                    .form(&[("value", "31")]),
            ),
            (
                "form, not a form",
                s.http
                    .post(&form)
                    .json(&json!({"value": "31", "token": API_TOKEN})),
            ),
            (
                "form, not a number",
                s.http
                    .post(&form)
                    .form(&[("value", "many"), ("token", API_TOKEN)]),
            ),
            (
                "form, value",
                no_redirects.post(&form).form(&[
                    ("value", "31"),
                    ("note", "ok"),
                    ("token", API_TOKEN),
                ]),
            ),
            (
                "form, token with spaces",
                no_redirects
                    .post(&form)
                    .form(&[("confidence", "6"), ("token", &format!(" {API_TOKEN} "))]),
            ),
        ];
        for (what, request) in requests {
            let resp = request.send().await.expect(what);
            seen.push(format!(
                "{} {what}: {}",
                if enabled { "on " } else { "off" },
                answer(resp).await
            ));
        }
        s.stop().await;
    }
    // Refused before the handler reads the body: a request without the token that is also
    // malformed gets the refusal, as does one to a write route with another method.
    let expected = r#"
on  sync, no token: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  sync, wrong token: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  sync, wrong basic password: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  sync, basic password: 200 | content-type: application/json | x-frame-options: DENY
on  sync, GET: 405 | x-frame-options: DENY
on  check-in, no token: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  check-in, wrong token: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  check-in, wrong token, not JSON: 401 | content-type: application/json | www-authenticate: Bearer | www-authenticate: Basic realm="okrsync", charset="UTF-8" | x-frame-options: DENY | {"error":"a valid bearer token is required"}
on  check-in, no body: 400 | content-type: application/json | x-frame-options: DENY | {"error":"expected a JSON body like {\"value\": 42} or {\"confidence\": 7, \"note\": \"…\"}"}
on  check-in, not JSON: 415 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Expected request with `Content-Type: application/json`
on  check-in, value: 201 | content-type: application/json | x-frame-options: DENY
on  form, wrong token: 401 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Wrong token: The token is not this server&#39;s API token; nothing was recorded.
on  form, no token field: 422 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Failed to deserialize form body: missing field `token`
on  form, token in the header only: 422 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Failed to deserialize form body: missing field `token`
on  form, not a form: 415 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Form requests must have `Content-Type: application/x-www-form-urlencoded`
on  form, not a number: 422 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Not recorded: The value must be a number, found &#34;many&#34;.
on  form, value: 303 | location: /kr/o.nps#confidence | x-frame-options: DENY
on  form, token with spaces: 303 | location: /kr/o.nps#confidence | x-frame-options: DENY
off sync, no token: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off sync, wrong token: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off sync, wrong basic password: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off sync, basic password: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off sync, GET: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, no token: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, wrong token: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, wrong token, not JSON: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, no body: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, not JSON: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off check-in, value: 403 | content-type: application/json | x-frame-options: DENY | {"error":"write endpoints are disabled: no server.api_token_env is configured"}
off form, wrong token: 403 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Check-ins are disabled: Writes need an API token: set server.api_token_env or server.api_token_file.
off form, no token field: 422 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Failed to deserialize form body: missing field `token`
off form, token in the header only: 422 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Failed to deserialize form body: missing field `token`
off form, not a form: 415 | content-type: text/plain; charset=utf-8 | x-frame-options: DENY | Form requests must have `Content-Type: application/x-www-form-urlencoded`
off form, not a number: 403 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Check-ins are disabled: Writes need an API token: set server.api_token_env or server.api_token_file.
off form, value: 403 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Check-ins are disabled: Writes need an API token: set server.api_token_env or server.api_token_file.
off form, token with spaces: 403 | content-type: text/html; charset=utf-8 | x-frame-options: DENY | Check-ins are disabled: Writes need an API token: set server.api_token_env or server.api_token_file.
"#;
    assert_eq!(seen.join("\n"), expected.trim(), "{}", seen.join("\n"));
}
both_backends!(write_routes_answer_only_with_the_token);

/// `POST /api/v1/sync` takes the scheduler's path: each step runs under the source's lease
/// and is noted on it (the next scheduled step is one interval after it). A source whose
/// lease another replica holds is that replica's to sync: it is made due there, as a
/// webhook makes it, and the answer is the run it records.
async fn a_sync_asked_for_runs_under_the_lease(db: Db) {
    use okrsync::store::LeaseAttempt;
    use okrsync::sync::replica_id;
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed([issue(
        1,
        "PAY-1",
        "A",
        "in_progress",
        None,
        &[],
        minute(9, 0),
        None,
    )]);
    let s = Served::start(&env).await;
    let engine = env.engine().await;
    let store = engine.store().clone();
    let sync = {
        let (http, url) = (s.http.clone(), format!("{}/api/v1/sync", s.base));
        move || {
            let request = http.post(&url).bearer_auth(API_TOKEN).send();
            async move {
                let answer = request.await.expect("sync");
                assert_eq!(answer.status(), 200);
                answer.json::<serde_json::Value>().await.expect("json")
            }
        }
    };
    let hour = chrono::Duration::hours(1);

    // A free lease: the step runs here, under it, and is noted on it.
    let before = chrono::Utc::now();
    let answer = sync().await;
    assert_eq!(
        answer["runs"][0]["replica"],
        json!(replica_id()),
        "{answer}"
    );
    let leases = store.leases().await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].holder, replica_id());
    let now = chrono::Utc::now();
    let LeaseAttempt::Held {
        last_run: Some(noted),
    } = store
        .try_lease("jira", replica_id(), now, now + hour)
        .await
        .expect("lease")
    else {
        panic!("the lease is held here, with the step noted on it");
    };
    assert!(
        noted >= before - chrono::Duration::milliseconds(1),
        "{noted}"
    );

    // Another replica holds the lease: the request leaves the step to it.
    store.release_leases(replica_id()).await.expect("release");
    let other = "elsewhere:1";
    let now = chrono::Utc::now();
    assert!(matches!(
        store
            .try_lease("jira", other, now, now + hour)
            .await
            .expect("lease"),
        LeaseAttempt::Held { .. }
    ));
    let runs_before = store.recent_runs(Some("jira"), 100).await.expect("runs");
    let asked = tokio::spawn(sync());
    // Made due on the lease, as a webhook makes it; nothing runs here meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = chrono::Utc::now();
        let attempt = store
            .try_lease("jira", other, now, now + hour)
            .await
            .expect("lease");
        if attempt == (LeaseAttempt::Held { last_run: None }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never made due");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!asked.is_finished(), "answered before the holder's step");
    assert_eq!(
        store.recent_runs(Some("jira"), 100).await.expect("runs"),
        runs_before
    );
    // The holder's step (as its scheduler runs it): the answer is its run.
    let now = chrono::Utc::now();
    store
        .mark_lease_run("jira", other, now)
        .await
        .expect("mark");
    engine
        .sync_source("jira", okrsync::sync::Mode::Incremental)
        .await
        .expect("the holder's step");
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("an answer once the holder's step is recorded")
        .expect("join");
    let runs = store.recent_runs(Some("jira"), 100).await.expect("runs");
    assert_eq!(runs.len(), runs_before.len() + 1);
    assert_eq!(
        answer,
        json!({ "runs": [serde_json::to_value(&runs[0]).expect("json")] })
    );
    assert_eq!(store.leases().await.expect("leases")[0].holder, other);
    s.stop().await;
}
both_backends!(a_sync_asked_for_runs_under_the_lease);
