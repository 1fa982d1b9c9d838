// eddy's dashboard in a real browser: Debian's Chromium, driven by playwright-core.
//
// Starts `eddy serve` (the debug build `cargo test` made) with an API token on the project in
// `project/`, and a fake CRM on 127.0.0.1 that refuses every call until the test fixes it.
// Every wait is bounded; the servers and the browser stop when the tests end.
//
//   node --test tests/browser/            (after `npm ci` in tests/browser)
//
// CHROMIUM names the browser (default /usr/bin/chromium), EDDY_BIN the binary (default
// target/debug/eddy), and EDDY_SCREENSHOTS a folder to save the main pages' screenshots in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url).pathname;
const root = resolve(here, "../..");
const TOKEN = "browser-test-token-0123456789";
const HANDLER = "crm.contact.updated";
const shots = process.env.EDDY_SCREENSHOTS ? resolve(process.env.EDDY_SCREENSHOTS) : null;

/** Polls `check` until it returns something truthy, at most `ms`. */
async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A CRM that answers 503 until `healthy` is set. */
function startCrm() {
  const crm = { healthy: false, calls: 0 };
  crm.server = createServer((req, res) => {
    crm.calls += 1;
    req.resume();
    req.on("end", () => {
      res.writeHead(crm.healthy ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: crm.healthy }));
    });
  });
  return new Promise((ok) => crm.server.listen(0, "127.0.0.1", () => ok(crm)));
}

/** `eddy serve` on a port of its choosing; resolves with its address once it listens. */
function startEddy(data, crmUrl) {
  const bin = process.env.EDDY_BIN || join(root, "target/debug/eddy");
  const args = ["serve", "--config", "eddy.toml", "--data", data, "--listen", "127.0.0.1:0"];
  const child = spawn(bin, args, {
    cwd: join(here, "project"),
    env: { ...process.env, EDDY_API_TOKEN: TOKEN, CRM_URL: crmUrl, EDDY_LOG_FORMAT: "pretty", EDDY_LOG: "eddy=info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = [];
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`eddy did not start:\n${lines.join("\n")}`)), 60_000);
    child.on("exit", (code) => fail(new Error(`eddy exited with ${code}:\n${lines.join("\n")}`)));
    createInterface({ input: child.stderr }).on("line", (line) => {
      lines.push(line);
      const at = line.indexOf("eddy: listening on http://");
      if (at === 0) {
        clearTimeout(timer);
        ok({ child, base: line.slice("eddy: listening on ".length).split(" ")[0], lines });
      }
    });
  });
}

describe("the dashboard", () => {
  let crm, eddy, browser, context, page, data;
  const api = async (path, init = {}) => {
    const headers = { authorization: `Bearer ${TOKEN}`, ...(init.headers || {}) };
    const res = await fetch(eddy.base + path, { ...init, headers });
    return { status: res.status, body: await res.json().catch(() => null) };
  };
  const deliveries = async (query) => (await api(`/deliveries?handler=${HANDLER}&${query}`)).body.deliveries;
  const shoot = async (name) => {
    if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  before(async () => {
    if (shots) mkdirSync(shots, { recursive: true });
    data = mkdtempSync(join(tmpdir(), "eddy-browser-"));
    crm = await startCrm();
    eddy = await startEddy(join(data, "data"), `http://127.0.0.1:${crm.server.address().port}`);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    eddy?.child.kill("SIGTERM");
    await new Promise((r) => (eddy?.child.exitCode === null ? eddy.child.on("exit", r) : r()));
    crm?.server.close();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  test("with a token set, the UI refuses access until sign-in", async () => {
    const direct = await fetch(eddy.base + "/ui/events", { redirect: "manual" });
    assert.equal(direct.status, 303, "a page without a session goes to the sign-in");
    assert.match(direct.headers.get("location"), /^\/ui\/login\?next=/);
    const forged = await fetch(eddy.base + "/ui/events/x/delete", { method: "POST", redirect: "manual" });
    assert.equal(forged.status, 403, "an action without a session is refused");

    await page.goto(eddy.base + "/ui/deliveries?status=dead");
    assert.match(page.url(), /\/ui\/login\?next=/);
    await shoot("login");
    await page.fill("#token", "not-the-token");
    await page.click("button[type=submit]");
    await page.getByText("That is not eddy's API token.").waitFor();
    await page.fill("#token", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/ui\/deliveries\?status=dead$/);
    await page.getByRole("heading", { name: "Deliveries" }).waitFor();

    // Signed in, an action still needs the page's CSRF token.
    const status = await page.evaluate(async () => {
      const res = await fetch("/ui/deliveries/x/replay", { method: "POST", body: new URLSearchParams({ _csrf: "guess" }) });
      return res.status;
    });
    assert.equal(status, 403);
  });

  test("a dead delivery is found by filter, replayed in bulk after a fix, and seen to succeed", async () => {
    for (const [i, email] of ["ada@example.com", "grace@example.com", "edsger@example.com"].entries()) {
      const event = { id: `contact-${i}`, type: HANDLER, data: { email, plan: "free" } };
      const sent = await api("/events", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event) });
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
    }
    await until("three dead deliveries", async () => (await deliveries("status=dead")).length === 3);

    await page.goto(eddy.base + "/ui/deliveries");
    await page.selectOption("select[name=status]", "dead");
    await page.fill("input[name=handler]", HANDLER);
    await page.fill("input[name=error]", "503");
    await page.click("form.filters button[type=submit]");
    await page.waitForURL(/status=dead/);
    assert.equal(await page.locator("#deliveries tbody tr").count(), 3);
    await shoot("deliveries");

    await page.locator("#deliveries tbody tr a").first().click();
    await page.getByText("the CRM answered 503").first().waitFor();
    await page.getByText("syncing contact").first().waitFor();
    await shoot("delivery");

    crm.healthy = true;
    await page.goBack();
    await page.click("#replay-these");
    await page.waitForURL(/\/ui\/replay\?/);
    assert.match(await page.textContent("#replay-count"), /^3 deliveries would be queued again/);
    assert.equal(await page.locator("#deliveries tbody tr").count(), 3, "the preview shows a sample");
    // Two a second: the job runs long enough for its page to follow it.
    await page.fill("input[name=rate]", "2");
    await shoot("replay-preview");
    await page.click("#confirm-replay");
    await page.waitForURL(/\/ui\/jobs\//);
    assert.equal(await page.textContent("#job-state"), "running");
    // The job page follows the job by itself (htmx), without a reload.
    await page.locator("#job-state", { hasText: "done" }).waitFor({ timeout: 30_000 });
    assert.match(await page.textContent("#job-counts"), /^3 queued again, 0 skipped, of 3\./);

    // ... and then how the deliveries it queued fared.
    await page.locator("#job-outcomes", { hasText: "3 succeeded, 0 failed again, 0 still running or waiting" }).waitFor();
    await shoot("replay-job");
    await page.getByRole("link", { name: "Deliveries that succeeded" }).click();
    assert.equal(await page.locator("#deliveries tbody tr").count(), 3);
    assert.equal(await page.locator("#deliveries .status.succeeded").count(), 3);
    assert.equal((await deliveries("status=dead")).length, 0);
  });

  test("an event is edited in the JSON editor and its history shows the diff", async () => {
    await page.goto(eddy.base + "/ui/events?type=crm.**");
    await shoot("events");
    await page.getByRole("link", { name: "contact-0" }).click();
    await page.getByRole("link", { name: "Edit data" }).click();
    const editor = page.locator("textarea#data");
    await editor.fill('{"email": "ada@example.com", "plan": ');
    await page.getByText("Not valid JSON").waitFor();
    assert.equal(await page.locator("form.editor button[type=submit]").isDisabled(), true);
    await editor.fill('{"email": "ada@example.com", "plan": "pro", "seats": 5}');
    await page.click("form.editor button[type=submit]");
    await page.getByText("Saved as a new version").waitFor();
    const history = page.locator("section.version");
    assert.equal(await history.count(), 1);
    assert.match(await history.locator("h3").textContent(), /^Version 1 → 2/);
    const rows = await history
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim()).join(" ")));
    assert.deepEqual(rows, ['data.plan "free" "pro"', "data.seats (none) 5"]);
    await shoot("event");

    const stored = await api("/events/contact-0");
    assert.deepEqual(stored.body.event.event.data, { email: "ada@example.com", plan: "pro", seats: 5 });
    assert.equal(stored.body.event.version, 2);
  });

  test("pages read with JavaScript off", async () => {
    const cookies = await context.cookies();
    const plain = await browser.newContext({ javaScriptEnabled: false });
    await plain.addCookies(cookies);
    const reader = await plain.newPage();
    await reader.goto(eddy.base + "/ui/events?order=oldest");
    assert.equal(await reader.locator("#events tbody tr").count(), 3);
    await reader.goto(eddy.base + "/ui/events/contact-1");
    assert.match(await reader.textContent("pre.json"), /grace@example\.com/);
    await reader.goto(eddy.base + "/ui/handlers");
    assert.match(await reader.textContent("#handlers"), /crm\.contact\.updated/);
    await plain.close();
  });

  test("the overview and the handlers page show the last hour", async () => {
    await page.goto(eddy.base + "/ui");
    assert.equal(await page.textContent("#ingested-hour"), "3");
    assert.equal(await page.locator("figure.chart").count(), 3);
    await shoot("overview");
    await page.goto(eddy.base + "/ui/handlers");
    const row = page.locator(`#handler-${HANDLER.replaceAll(".", "\\.")}`);
    assert.match(await row.textContent(), /loaded/);
    await shoot("handlers");
  });
});
