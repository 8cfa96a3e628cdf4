// A user's session in the console, in Debian's headless Chromium, driven by playwright-core.
// Started by crates/switchyard/tests/it/console.rs, which starts the hub, a sink and a source and
// passes them in the environment; exits non-zero with a message when a step fails.
//
//   BASE, CLIENT_ID, CLIENT_SECRET, ADMIN_ID, ADMIN_SECRET, SINK_URL, SOURCE_ID, PARTNER_ID,
//   SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env("BASE");
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);

const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const expectText = async (text, what) => {
  const body = await page.textContent("body");
  if (!body.includes(text)) {
    throw new Error(`${what}: expected ${JSON.stringify(text)} on ${page.url()}\n${body.slice(0, 2000)}`);
  }
};
const step = (name) => console.log(`step: ${name}`);

async function signIn(id, secret) {
  await page.goto(`${base}/login`);
  await page.fill("#client_id", id);
  await page.fill("#client_secret", secret);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

try {
  step("sign in");
  await page.goto(`${base}/`);
  if (!page.url().endsWith("/login")) throw new Error(`/ without a session went to ${page.url()}`);
  await shot("01-sign-in");
  await signIn(env("CLIENT_ID"), env("CLIENT_SECRET"));
  if (!page.url().endsWith("/console/webhooks")) throw new Error(`signed in to ${page.url()}`);
  await expectText("No webhooks yet", "empty webhook list");

  step("create a webhook for an entity");
  await page.click("text=Add webhook");
  await page.fill("#event_url", env("SINK_URL"));
  await page.check("input[name=entity][value=ORDER]");
  await shot("02-add-webhook");
  await Promise.all([page.waitForNavigation(), page.click("form.stack button[type=submit]")]);
  await expectText("Copy the signing secrets now", "created page");
  await expectText("PO_CREATED", "the entity's events were subscribed");
  await page.goto(`${base}/console/webhooks`);
  await shot("03-webhooks");
  const link = page.locator("table a", { hasText: /^PO_CREATED$/ }).first();
  const href = await link.getAttribute("href");
  const webhook = `${base}${href}`;

  step("trigger an event");
  const token = await (async () => {
    const answer = await fetch(`${base}/v3/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: "Basic " + Buffer.from(`${env("CLIENT_ID")}:${env("CLIENT_SECRET")}`).toString("base64"),
      },
      body: "grant_type=client_credentials",
    });
    return (await answer.json()).access_token;
  })();
  const published = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      eventType: "PO_CREATED",
      partnerId: env("PARTNER_ID"),
      eventId: "browser-test-1",
      payload: { partnerId: env("PARTNER_ID"), purchaseOrderId: "PO-BROWSER-1" },
    }),
  });
  if (published.status >= 300) throw new Error(`publish answered ${published.status}: ${await published.text()}`);

  step("see the attempt in the callback logs");
  let seen = false;
  for (let i = 0; i < 50 && !seen; i++) {
    await page.goto(`${webhook}/logs`);
    seen = (await page.locator("td .badge.good", { hasText: "succeeded" }).count()) > 0;
    if (!seen) await page.waitForTimeout(200);
  }
  if (!seen) throw new Error("no succeeded attempt appeared in the callback logs");
  await expectText("200", "the attempt's status code");
  await shot("04-callback-logs");

  step("open the event");
  await Promise.all([page.waitForNavigation(), page.locator("table a", { hasText: "PO_CREATED" }).first().click()]);
  await expectText("PO-BROWSER-1", "the event's payload");
  await shot("05-event");
  await page.goto(`${base}/console/events`);
  await expectText("PO_CREATED", "the event list");
  await shot("06-events");

  step("pause the webhook");
  await page.goto(webhook);
  await Promise.all([page.waitForNavigation(), page.click("button:text-is('Pause')")]);
  await expectText("Webhook paused", "pause notice");
  await expectText("INACTIVE", "paused status");
  await shot("07-webhook-paused");

  step("see a refused forged request on the failures dashboard");
  const forged = await fetch(`${base}/ingest/${env("SOURCE_ID")}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": "msg_forged",
      "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
      "webhook-signature": "v1,Zm9yZ2VkIHNpZ25hdHVyZSBmb3JnZWQgc2lnbmF0dXJlIQ==",
    },
    body: JSON.stringify({ type: "order.created", data: { id: "forged" } }),
  });
  if (forged.status !== 401) throw new Error(`the forged request was answered ${forged.status}`);
  await page.goto(`${base}/console/failures`);
  await expectText("signature_mismatch", "the refusal's reason");
  await expectText("Missed by webhook", "reconciliation's section");
  await expectText("PO-103", "a backfilled order");
  await shot("08-failures");
  await Promise.all([page.waitForNavigation(), page.locator("table a", { hasText: /^1$/ }).first().click()]);
  await expectText("signature_mismatch", "the drill-down rows");
  await shot("09-refused-requests");

  step("sources");
  await page.goto(`${base}/console/sources`);
  await expectText(env("SOURCE_ID"), "the source's ingest URL");
  await shot("10-sources");

  step("a source's reconciliation");
  await page.goto(`${base}/console/sources/${env("RECONCILING_SOURCE_ID")}`);
  await expectText("Reconcile now", "the run button");
  await Promise.all([page.waitForNavigation(), page.click("button:text-is('Reconcile now')")]);
  await expectText("Reconciled", "the run's notice");
  await shot("12-source-reconciliation");

  step("admin: partners");
  await page.click("header button[type=submit]");
  await page.waitForURL(/\/login$/);
  await signIn(env("ADMIN_ID"), env("ADMIN_SECRET"));
  await page.goto(`${base}/console/partners`);
  await expectText(env("PARTNER_ID"), "the partner list");
  await shot("11-partners");
  console.log("ok");
} catch (error) {
  await shot("failure").catch(() => {});
  console.error(String(error && error.stack ? error.stack : error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
