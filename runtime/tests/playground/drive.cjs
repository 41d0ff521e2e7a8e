// Drives `omniflow playground` in headless Chromium (playwright-core, Debian's chromium):
// picks the flow and its map, types payloads (mapped, routed, rejected), loads the test
// fixture, then saves a changed mapping rule to the flow file and waits for the page to
// show the new output. Screenshots go to OUT_DIR; prints one JSON object with what it saw.
// Usage: NODE_PATH=…/node_modules node drive.cjs BASE_URL FLOW_FILE OUT_DIR
const fs = require('fs');
const { chromium } = require('playwright-core');

async function main() {
  const [base, flowFile, out] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const seen = {};
  const outside = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Every request the page makes stays on the playground's own origin.
    page.on('request', (r) => { if (!r.url().startsWith(base)) outside.push(r.url()); });
    const shot = async (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
    const text = async (id) => page.locator(`#${id}`).innerText();
    const until = async (id, needle) => page.waitForFunction(
      ([id, needle]) => document.getElementById(id).innerText.includes(needle),
      [id, needle], { timeout: 30000 });

    await page.goto(`${base}/`);
    await page.waitForFunction(() => document.getElementById('flow').options.length > 0);
    seen.flows = await page.locator('#flow option').allInnerTexts();
    seen.node = await page.locator('#node').inputValue();

    await page.fill('#payload', '{"id": "o-7", "sku": "CAP", "qty": 12}');
    await until('output', 'SKU-200');
    seen.mapped = await text('output');
    seen.route = await text('route');
    await shot('mapped');

    await page.fill('#payload', '{"id": "o-8", "sku": "SCARF", "qty": 1}');
    await until('rejection', 'SCARF');
    seen.rejection = await text('rejection');
    await shot('rejected');

    await page.fill('#payload', '{"id": "o-9", "sku": ');
    await until('error', 'not JSON');
    seen.bad_json = await text('error');

    await page.selectOption('#fixture', { label: 'a small order goes to single' });
    await until('route', 'single');
    seen.fixture_node = await page.locator('#node').inputValue();
    seen.fixture_route = await text('route');
    // A sink reads its input alone: its siblings do not run.
    await page.selectOption('#node', 'bulk');
    await page.fill('#payload', '{"id": "o-11", "sku": "SKU-1", "qty": 1}');
    await until('output', 'o-11');
    seen.sink_route = await text('route');
    await page.selectOption('#node', 'line');
    await page.fill('#payload', '{"id": "o-10", "sku": "TEE-M", "qty": 3}');
    await until('output', 'o-10');

    // A changed rule, saved to disk: the page shows the new output by itself.
    const flow = fs.readFileSync(flowFile, 'utf8');
    fs.writeFileSync(flowFile, flow.replace('id = $.id', 'id = "web:" + $.id'));
    await until('output', 'web:o-10');
    seen.after_edit = await text('output');
    await shot('after-edit');

    // A saved mistake shows the compiler's report; the last good flows keep answering.
    fs.writeFileSync(flowFile, flow.replace('id = $.id', 'id = $.id +'));
    await until('error', 'E0001');
    seen.compile_error = await text('error');
    await shot('compile-error');
    fs.writeFileSync(flowFile, flow);
    await page.waitForFunction(() => document.getElementById('error').innerText === '', null, { timeout: 30000 });
  } finally {
    seen.outside = outside;
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen));
}

main().catch((err) => { console.error(err); process.exit(1); });
