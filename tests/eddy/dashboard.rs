//! The dashboard at `/ui` over HTTP, without a browser (tests/browser drives it in one): who
//! may see it, the CSRF token every action needs, and what its pages find. Walks the router's
//! own list of routes, so a page added later is checked too.

use eddy::server::{Access, ROUTES, Route};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::server_support::TestServer;

const TOKEN: &str = "dashboard-token-8c1e";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

fn concrete(route: &Route) -> String {
    route.path.replace("{id}", "no-such-id").replace("{name}", "eddy.css")
}

async fn start(dir: &std::path::Path, extra: &str) -> TestServer {
    let handlers = dir.join("handlers");
    std::fs::create_dir_all(&handlers).unwrap();
    TestServer::start(&handlers, &dir.join("data"), extra).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_and_action_needs_the_token_or_a_signed_in_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &format!("api_token = \"{TOKEN}\"")).await;
    let pages: Vec<&Route> = ROUTES.iter().filter(|r| r.access == Access::Dashboard).collect();
    assert!(pages.len() >= 15, "{ROUTES:?}");
    for route in pages {
        let method = reqwest::Method::from_bytes(route.verb.as_str().as_bytes()).unwrap();
        let request = || client().request(method.clone(), server.url(&concrete(route)));
        let none = request().send().await.unwrap();
        if route.verb.as_str() == "GET" {
            assert_eq!(none.status(), 303, "{route:?}");
            let to = none.headers()["location"].to_str().unwrap();
            assert!(to.starts_with("/ui/login?next=%2Fui"), "{route:?}: {to}");
        } else {
            assert_eq!(none.status(), 403, "{route:?}: an action without a session");
        }
        let wrong = request().bearer_auth("not-the-token").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{route:?}");
        let right = request().bearer_auth(TOKEN).send().await.unwrap();
        let status = right.status().as_u16();
        let body = right.text().await.unwrap();
        // An action answers with a redirect to where it leads; a page never redirects.
        let refused = if route.verb.as_str() == "GET" {
            &[303, 401, 403, 405][..]
        } else {
            &[401, 403, 405]
        };
        assert!(!refused.contains(&status), "{route:?} with the token: {status} {body}");
        assert!(!body.contains("no endpoint at"), "{route:?} is not served");
        // Whatever went wrong (here: no such event, an empty form) is said as a page.
        if status != 303 {
            assert!(body.starts_with("<!DOCTYPE html>"), "{route:?}: {status} {body}");
        }
    }
    for path in ["/ui/login", "/ui/assets/eddy.css", "/ui/assets/htmx.min.js"] {
        assert_eq!(
            client().get(server.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    server.stop().await;
}

/// The session cookie a sign-in with `token` sets, if it succeeds.
async fn sign_in(server: &TestServer, token: &str) -> (u16, Option<String>, String) {
    let form = [("token", token), ("next", "/ui/events")];
    let answer = client().post(server.url("/ui/login")).form(&form).send().await.unwrap();
    let cookie = answer
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let to = answer
        .headers()
        .get("location")
        .map_or("", |v| v.to_str().unwrap())
        .to_owned();
    (answer.status().as_u16(), cookie, to)
}

/// The value of the CSRF field in `html`.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="_csrf" value=""#)
        .expect("a form with the CSRF field")
        + 20;
    html[at..at + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_signed_in_with_the_token_takes_actions_only_with_its_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &format!("api_token = \"{TOKEN}\"")).await;
    let (status, cookie, _) = sign_in(&server, "wrong").await;
    assert_eq!((status, cookie), (401, None));
    let (status, cookie, to) = sign_in(&server, TOKEN).await;
    assert_eq!((status, to.as_str()), (303, "/ui/events"));
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let page = client()
        .get(server.url("/ui/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let csrf = csrf_of(&page.text().await.unwrap());
    // A replay of a delivery that does not exist: the session and token get through to it.
    let act = |fields: Vec<(&'static str, String)>, site: &'static str| {
        client()
            .post(server.url("/ui/deliveries/no-such-id/replay"))
            .header("cookie", &session)
            .header("sec-fetch-site", site)
            .form(&fields)
            .send()
    };
    assert_eq!(act(vec![], "same-origin").await.unwrap().status(), 403, "no token");
    let guessed = vec![("_csrf", "0".repeat(64))];
    assert_eq!(
        act(guessed, "same-origin").await.unwrap().status(),
        403,
        "a wrong token"
    );
    let right = vec![("_csrf", csrf.clone())];
    assert_eq!(
        act(right.clone(), "cross-site").await.unwrap().status(),
        403,
        "from another site"
    );
    assert_eq!(
        act(right, "same-origin").await.unwrap().status(),
        404,
        "through to the action"
    );

    let out = [("_csrf", csrf)];
    let signed_out = client()
        .post(server.url("/ui/logout"))
        .header("cookie", &session)
        .form(&out)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 303);
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = client()
        .get(server.url("/ui"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session ended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_loopback_browsers_get_a_session_and_other_names_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "").await;
    for (i, (email, plan)) in [("ada@example.com", "pro"), ("grace@example.com", "free")]
        .iter()
        .enumerate()
    {
        let event = json!({"id": format!("e{i}"), "type": "crm.contact", "data": {"email": email, "plan": plan}});
        server.send(event).await;
    }
    let page = client().get(server.url("/ui/events?text=GRACE@")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["set-cookie"].to_str().unwrap().starts_with("eddy_ui="));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(">e1</a>") && !html.contains(">e0</a>"),
        "found by text in the data: {html}"
    );
    let typed = client()
        .get(server.url("/ui/events?type=crm.*&order=oldest"))
        .send()
        .await
        .unwrap();
    let html = typed.text().await.unwrap();
    let (e0, e1) = (html.find(">e0</a>").unwrap(), html.find(">e1</a>").unwrap());
    assert!(e0 < e1, "oldest first");
    let bad = client().get(server.url("/ui/events?since=soon")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("since must be an RFC 3339 time"));

    let rebound = client()
        .get(server.url("/ui"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rebound.status(),
        421,
        "a page for another name is refused (DNS rebinding)"
    );
    let login = client().get(server.url("/ui/login")).send().await.unwrap();
    assert_eq!(login.headers()["location"], "/ui", "nothing to sign in to");
    server.stop().await;
}

/// A browser's session without a token, begun at `path`: its cookie and the CSRF token of
/// the page's forms.
async fn browser_session(server: &TestServer, path: &str) -> (String, String) {
    let page = client().get(server.url(path)).send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf_of(&page.text().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_redact_delete_and_cancel_a_paced_replay_through_their_forms() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir_all(&handlers).unwrap();
    let failing = "export default async () => { throw new NonRetryableError('crm down'); };\n";
    std::fs::write(handlers.join("fails.js"), failing).unwrap();
    let server = TestServer::start(&handlers, &dir.path().join("data"), "").await;
    for i in 0..3 {
        server
            .send(json!({"id": format!("f{i}"), "type": "fails", "data": {"email": "ada@example.com"}}))
            .await;
    }
    server
        .wait_until("three dead deliveries", |s| async move {
            s.get("/deliveries?status=dead").await["deliveries"]
                .as_array()
                .map_or(0, Vec::len)
                == 3
        })
        .await;
    let (cookie, csrf) = browser_session(&server, "/ui/events/f2").await;
    let post = |path: &str, fields: Vec<(&'static str, String)>| {
        let fields: Vec<_> = fields.into_iter().chain([("_csrf", csrf.clone())]).collect();
        client()
            .post(server.url(path))
            .header("cookie", &cookie)
            .form(&fields)
            .send()
    };

    let preview = client()
        .get(server.url("/ui/replay?status=dead&handler=fails"))
        .header("cookie", &cookie);
    let preview = preview.send().await.unwrap().text().await.unwrap();
    assert!(
        preview.contains("<strong>3</strong> deliveries would be queued again"),
        "{preview}"
    );
    let fields = vec![
        ("status", "dead".to_owned()),
        ("handler", "fails".to_owned()),
        ("rate", "0.2".to_owned()),
    ];
    let started = post("/ui/replay", fields).await.unwrap();
    assert_eq!(started.status(), 303);
    let job = started.headers()["location"].to_str().unwrap().to_owned();
    let id = job.trim_start_matches("/ui/jobs/").to_owned();
    let page = client()
        .get(server.url(&job))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains(r#"id="job-state">running<"#));
    assert_eq!(post(&format!("{job}/cancel"), vec![]).await.unwrap().status(), 303);
    let cancelled = server.get(&format!("/replays/{id}")).await;
    assert!(
        ["running", "cancelled"].contains(&cancelled["state"].as_str().unwrap()),
        "{cancelled}"
    );
    server
        .wait_until("the job stops", |s| {
            let path = format!("/replays/{id}");
            async move { s.get(&path).await["state"] == "cancelled" }
        })
        .await;
    assert!(server.get(&format!("/replays/{id}")).await["queued"].as_u64().unwrap() < 3);

    let redacted = post("/ui/events/f0/redact", vec![("fields", "email".to_owned())])
        .await
        .unwrap();
    assert_eq!(redacted.headers()["location"], "/ui/events/f0?done=redacted");
    let record = server.get("/events/f0").await["event"].clone();
    assert!(record["event"]["data"].get("email").is_none(), "{record}");
    assert_eq!(record["redacted"], json!(["data.email"]), "{record}");
    let confirm = client()
        .get(server.url("/ui/events/f1/delete"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(confirm.text().await.unwrap().contains("It cannot be undone."));
    assert_eq!(
        post("/ui/events/f1/delete", vec![]).await.unwrap().headers()["location"],
        "/ui/events?done=deleted"
    );
    let gone = reqwest::get(server.url("/events/f1")).await.unwrap();
    assert_eq!(gone.status(), 404);
    // The handler's limits, as the API and the handlers page show them.
    let listed = server.get("/handlers").await["handlers"][0].clone();
    assert_eq!(
        (listed["timeout_ms"].as_u64(), listed["cpu_limit_ms"].as_u64()),
        (Some(30_000), Some(10_000)),
        "{listed}"
    );
    let page = client()
        .get(server.url("/ui/handlers"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("30s / 10s") && page.contains(r#"id="handler-fails""#),
        "{page}"
    );
    let audit = server.get("/audit").await.to_string();
    assert!(
        audit.contains(r#""actor":"ui""#),
        "actions are audited as the dashboard's: {audit}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ordered_delivery_shows_what_it_waits_for_and_a_dead_one_is_skipped_from_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    crate::support::copy_dir(&crate::support::fixtures().join("../ordered"), &handlers);
    let server = TestServer::start(&handlers, &dir.path().join("data"), "").await;
    let entry =
        |id: &str, bad: bool| json!({"id": id, "type": "ledger.entry", "subject": "acct-7", "data": {"bad": bad}});
    server.send(entry("l0", true)).await;
    let dead = server.wait_for_status("l0", "ledger", "dead").await;
    let dead_id = dead["delivery"]["id"].as_str().unwrap().to_owned();
    server.send(entry("l1", false)).await;
    let blocked = server.wait_for_status("l1", "ledger", "blocked").await;
    let blocked_id = blocked["delivery"]["id"].as_str().unwrap().to_owned();

    // The dead delivery's page has forms (Replay, Skip) to take the CSRF token from.
    let (cookie, csrf) = browser_session(&server, &format!("/ui/deliveries/{dead_id}")).await;
    let page = |path: String| {
        let request = client().get(server.url(&path)).header("cookie", &cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let listed = page("/ui/deliveries?status=blocked".into()).await;
    assert!(listed.contains(&format!("/ui/deliveries/{blocked_id}")), "{listed}");
    let waiting = page(format!("/ui/deliveries/{blocked_id}")).await;
    assert!(
        waiting.contains(">acct-7</code> waits for <a href=\"/ui/deliveries/"),
        "{waiting}"
    );
    assert!(waiting.contains(&dead_id), "{waiting}");
    let handlers = page("/ui/handlers".into()).await;
    assert!(
        handlers.contains("in order by <code>subject</code>, on dead: block"),
        "{handlers}"
    );
    let holding = page(format!("/ui/deliveries/{dead_id}")).await;
    assert!(holding.contains("/skip\""), "{holding}");
    let skipped = client()
        .post(server.url(&format!("/ui/deliveries/{dead_id}/skip")))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(skipped.status(), 303);
    assert!(
        skipped.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("?done=skipped")
    );
    server.wait_for_status("l1", "ledger", "succeeded").await;
    let audit = server.get("/audit").await;
    assert!(audit.to_string().contains("\"skip\""), "{audit}");
    server.stop().await;
}
