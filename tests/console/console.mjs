// The admin console and the API browser, end to end in a real browser (Debian's chromium,
// driven by playwright-core). tests/api/console.rs starts the engine and runs this with:
//   BASE_URL        the engine, e.g. http://127.0.0.1:39211
//   ADMIN_USERNAME, ADMIN_PASSWORD
//   SCREENSHOTS     the folder the screenshots go to (one per page)
// It prints one JSON line (what the Rust test then checks in the store) and exits 0, or
// prints what failed and exits 1.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const admin = { username: process.env.ADMIN_USERNAME, password: process.env.ADMIN_PASSWORD };
mkdirSync(shots, { recursive: true });

const UNITS = 200;
const ROUNDS = 5;
const PER_ROUND = 30;

// A customer's orders go over the API directly: the console is the admin's side.
async function call(method, path, token, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  return { status: response.status, data };
}

async function customer(n) {
  const username = `console-buyer-${n}-${Date.now()}`;
  const password = "console-buyer-password";
  const made = await call("POST", "/users", null, { username, email: `${username}@example.com`, password });
  if (made.status !== 201) throw new Error(`registering a buyer: ${made.status} ${JSON.stringify(made.data)}`);
  const login = await call("POST", "/auth/login", null, { username, password });
  return login.data.access_token;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const outside = [];
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(15000);
  // Nothing may come from another host (no CDN): every request the pages make is recorded.
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("data:")) outside.push(request.url());
  });
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));

  // Sign in: a wrong password is told, then the admin gets in.
  await page.goto(`${base}/admin`);
  await page.screenshot({ path: `${shots}/01-sign-in.png` });
  await page.fill("#sign-in [name=username]", admin.username);
  await page.fill("#sign-in [name=password]", "not-the-password");
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#notice:not([hidden])");
  await page.fill("#sign-in [name=password]", admin.password);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#deals-page:not([hidden])");

  // Create a deal in the form.
  const product = `Console kettle ${Date.now()}`;
  await page.click("#new-deal");
  await page.fill("#deal-form [name=product_name]", product);
  await page.fill("#deal-form [name=actual_price]", "50.00");
  await page.fill("#deal-form [name=final_price]", "29.99");
  await page.fill("#deal-form [name=total_units]", String(UNITS));
  await page.click("#deal-form button[type=submit]");
  const row = page.locator("#deals tbody tr", { hasText: product });
  await row.waitFor();
  const dealId = Number(await row.getAttribute("data-deal-id"));
  await page.waitForFunction((id) =>
    document.querySelector(`#deals tr[data-deal-id="${id}"]`)?.dataset.status === "ACTIVE", dealId);
  await page.screenshot({ path: `${shots}/02-deal-created.png` });

  // Orders arrive; the stock bar falls with each round, moved by the event stream alone.
  const buyers = await Promise.all(Array.from({ length: PER_ROUND }, (_, n) => customer(n)));
  // The bar's width as set (its animation may still run), in percent of the track.
  const barWidth = () => row.locator(".fill").evaluate((el) => parseFloat(el.style.width));
  const widths = [await barWidth()];
  const orderIds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const placed = await Promise.all(buyers.map((token) => call("POST", "/orders", token, { deal_id: dealId, quantity: 1 })));
    for (const order of placed) {
      if (order.status !== 201) throw new Error(`an order: ${order.status} ${JSON.stringify(order.data)}`);
      orderIds.push(order.data.id);
    }
    const left = UNITS - round * PER_ROUND;
    await page.waitForFunction(([id, left]) =>
      document.querySelector(`#deals tr[data-deal-id="${id}"]`)?.dataset.available === String(left), [dealId, left]);
    widths.push(await barWidth());
    if (round === 3) await page.screenshot({ path: `${shots}/03-stock-falling.png` });
  }
  for (let i = 1; i < widths.length; i++) {
    if (!(widths[i] < widths[i - 1])) failures.push(`the stock bar did not fall: ${widths.join(", ")}`);
  }

  // Close the deal from its row.
  await row.locator("button.toggle").click();
  await page.waitForFunction((id) =>
    document.querySelector(`#deals tr[data-deal-id="${id}"]`)?.dataset.status === "CLOSED", dealId);
  await page.screenshot({ path: `${shots}/04-deal-closed.png` });

  // Approve one open order (the newest: the list shows the newest 100).
  await page.click("#nav button[data-page=orders]");
  const approveId = Math.max(...orderIds);
  const orderRow = page.locator(`#orders tr[data-order-id="${approveId}"]`);
  await orderRow.waitFor();
  await page.screenshot({ path: `${shots}/05-orders.png` });
  await orderRow.locator("button.approve").click();
  await page.waitForSelector(`#notice.ok:has-text("Order ${approveId} approved")`);
  await page.selectOption("#order-status", "APPROVED");
  await page.locator(`#orders tr[data-order-id="${approveId}"][data-status="APPROVED"]`).waitFor();
  await page.screenshot({ path: `${shots}/06-order-approved.png` });

  // The cluster's nodes and owners.
  await page.click("#nav button[data-page=cluster]");
  await page.waitForFunction(() => document.querySelector("#cluster-mode").textContent.length > 0);
  const clusterMode = await page.textContent("#cluster-mode");
  await page.waitForSelector("#nodes tbody tr");
  await page.screenshot({ path: `${shots}/07-cluster.png` });

  // Throughput and latency charts from /metrics (two samples make the first point).
  await page.click("#nav button[data-page=performance]");
  await page.waitForFunction(() => document.querySelector("#performance-now").textContent.includes("orders/s"),
    null, { timeout: 20000 });
  await page.waitForSelector("#throughput-chart polyline");
  await page.screenshot({ path: `${shots}/08-performance.png` });

  // The API browser: every operation of the served document, rendered.
  await page.goto(`${base}/docs`);
  await page.waitForFunction(() => document.querySelectorAll(".opblock").length >= 20, null, { timeout: 20000 });
  const operations = await page.locator(".opblock").count();
  await page.screenshot({ path: `${shots}/09-api-docs.png`, fullPage: false });

  if (outside.length) failures.push(`requests to other hosts: ${outside.join(", ")}`);
  console.log(JSON.stringify({ deal_id: dealId, approved_order_id: approveId, orders: orderIds.length,
    widths, cluster_mode: clusterMode, operations, failures }));
  process.exitCode = failures.length ? 1 : 0;
} catch (error) {
  console.error(`console test failed: ${error.stack || error}`);
  if (failures.length) console.error(failures.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
