// Drives the operator console in headless Chromium (playwright-core, Debian's chromium):
// signs in, reads the flows page, filters dead letters and replays one, searches the
// lineage, shows a SKU; a screenshot of each page goes to OUT_DIR. Prints one JSON object
// with what it saw. Usage: NODE_PATH=…/node_modules node drive.cjs BASE_URL TOKEN OUT_DIR ORDER SKU
const { chromium } = require('playwright-core');

async function main() {
  const [base, token, out, order, sku] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const seen = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const shot = async (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
    const rows = async (selector) => page.locator(`${selector} tr`).count();

    const first = await page.goto(`${base}/console`);
    seen.unauthenticated = first.status();
    await shot('login');
    await page.fill('#token', 'not-the-token');
    await page.click('#sign-in');
    seen.wrong_token = await page.locator('text=That is not the console token').count();
    await page.fill('#token', token);
    await Promise.all([page.waitForURL(`${base}/console`), page.click('#sign-in')]);
    seen.flow_rows = await rows('#flows');
    seen.sink_rows = await rows('#sinks');
    seen.plots = await page.locator('.plot svg').count();
    seen.flows_text = await page.locator('#flows').innerText();
    await shot('flows');

    await page.goto(`${base}/console/dead-letters`);
    await page.fill('input[name=reason]', 'unknown sku');
    await page.click('#filter');
    seen.letters = await page.locator('#letters tr[id^=letter-]').count();
    seen.letters_text = await page.locator('#letters').innerText();
    await shot('dead-letters');
    await Promise.all([
      page.waitForURL(/done=/),
      page.locator('#letters tr[id^=letter-] button[name=replay]').first().click(),
    ]);
    seen.notice = await page.locator('#notice').innerText();
    await shot('dead-letters-replayed');

    await page.goto(`${base}/console/lineage`);
    await page.fill('#q', order);
    await page.click('#search');
    seen.events = await page.locator('#events tr').count() - 1;
    seen.events_text = await page.locator('#events').innerText();
    await shot('lineage');

    await page.goto(`${base}/console/inventory`);
    await page.fill('#sku', sku);
    await page.click('#show');
    seen.locations_text = await page.locator('table.locations').first().innerText();
    seen.channels_text = await page.locator('table.channels').first().innerText();
    await shot('inventory');
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
