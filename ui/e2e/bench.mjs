// Numbers for the desktop app, measured on the real app under Xvfb:
//   - /authorize → consent window showing the request (the app logs it per request)
//   - cold start: process launch → core listening; launch → main window rendered
//   - idle memory: PSS of the app and its WebKit processes (shared pages split
//     between the processes that map them, so they are not counted twice), and
//     their RSS summed for comparison
//   - revocation: the Revoke click → the agent's first refused call (200 runs,
//     GATEHOUSE_BENCH_REVOKES; one client, registered once, asks again each run)
//   - timeline: first render and filter with 100k (and 1M) events
//
// Usage (from ui/): xvfb-run -a -s "-screen 0 1280x800x24" node e2e/bench.mjs [events...]
// e.g. `node e2e/bench.mjs 100000 1000000`. Prints a JSON summary.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP, allowAsProposed, startAgent } from './harness.mjs';
import { Session, sleep, startDriver, waitFor } from './webdriver.mjs';

const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = {};

function rssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size (kB): each shared page counted once, split among its users. */
function pssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function descendants(pid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {}
  }
  const all = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      all.push(c);
      walk(c);
    }
  };
  walk(pid);
  return all;
}

function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

async function launchDirect(dataDir) {
  const started = performance.now();
  const child = spawn(APP, ['--data-dir', dataDir, '--port', '0', '--no-tray'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  await waitFor('server.json', () => existsSync(join(dataDir, 'server.json')), { interval: 5 });
  const listeningMs = performance.now() - started;
  return { child, listeningMs, log: () => log };
}

async function stopChild(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => (child.kill('SIGKILL'), r()), 5000);
    child.once('exit', () => (clearTimeout(t), r()));
  });
}

// 1. Cold start to "core listening" and idle memory, launched directly (no WebDriver).
{
  const runs = [];
  let memory;
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
    const { child, listeningMs } = await launchDirect(dir);
    runs.push(listeningMs);
    if (i === 2) {
      await sleep(5000); // idle
      const pids = [child.pid, ...descendants(child.pid)];
      const per = pids.map((p) => ({
        pid: p,
        comm: comm(p),
        pss_mb: +(pssKb(p) / 1024).toFixed(1),
        rss_mb: +(rssKb(p) / 1024).toFixed(1),
      }));
      const sum = (k) => +per.reduce((n, p) => n + p[k], 0).toFixed(1);
      memory = { total_pss_mb: sum('pss_mb'), total_rss_mb_double_counted: sum('rss_mb'), processes: per };
    }
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
  out.cold_start_to_listening_ms = { median: Math.round(median(runs)), runs: runs.map(Math.round) };
  out.idle_memory = memory;
}

// 2. Through WebDriver: launch → main window rendered; /authorize → consent window shown.
{
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  const driver = await startDriver({ GATEHOUSE_NO_TRAY: '1', RUST_LOG: 'info' });
  const t0 = performance.now();
  const s = await Session.create(driver.base, APP, ['--data-dir', dir, '--port', '0']);
  await s.window('main');
  await s.waitFind('.sidebar', { interval: 10 });
  out.launch_to_main_window_ms = Math.round(performance.now() - t0);
  const url = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')).url;
  const shown = [];
  for (let i = 0; i < 11; i++) {
    const agent = startAgent(`${url}/mcp/demo`, `Bench ${i}`);
    const asked = await agent.next('authorize');
    await agent.next('waiting_page');
    await s.window('consent');
    const line = await waitFor('the shown log line', () => {
      const m = [...driver.log.join('').matchAll(/^(\S+)\s+INFO.*authorize_to_shown_ms=(\d+)/gm)];
      return m.length > i ? { fromRequest: Number(m[i][2]), fromAgent: Date.parse(m[i][1]) - asked.at } : null;
    }).catch((e) => {
      throw new Error(`${e.message}\n${driver.log.join('')}`);
    });
    shown.push(line);
    await s.clickClosing(await s.waitFind('[data-testid=deny]'));
    await agent.next('denied');
    agent.stop();
    await s.consentGone();
    await s.window('main');
  }
  // fromAgent: the client's GET /authorize (includes listing the server's tools) → the request painted in the window.
  // fromRequest: the consent request stored → painted (window creation, page load, IPC).
  const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1];
  out.authorize_to_consent_shown_ms = {
    median_from_client_authorize: median(shown.map((x) => x.fromAgent)),
    p95_from_client_authorize: p95(shown.map((x) => x.fromAgent)),
    median_from_request_stored: median(shown.map((x) => x.fromRequest)),
    p95_from_request_stored: p95(shown.map((x) => x.fromRequest)),
    runs: shown,
  };

  // Memory with the main window and a consent window open (the RSS of everything the app started).
  const pid = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')).pid;
  const pids = [pid, ...descendants(pid)];
  out.memory_after_consent_runs_mb = {
    pss: +(pids.reduce((n, p) => n + pssKb(p), 0) / 1024).toFixed(1),
    rss_double_counted: +(pids.reduce((n, p) => n + rssKb(p), 0) / 1024).toFixed(1),
  };

  await s.delete();
  await driver.stop();
  rmSync(dir, { recursive: true, force: true });
}

// 2b. Revocation from the app (an app of its own).
{
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  const driver = await startDriver({ GATEHOUSE_NO_TRAY: '1' });
  const s = await Session.create(driver.base, APP, ['--data-dir', dir, '--port', '0']);
  await s.window('main');
  await s.waitFind('.sidebar', { interval: 10 });
  const url = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')).url;
  // Revocation from the app: an approved agent calls back to back; the person
  // clicks Revoke on its card. From the click (sent through WebDriver, so its
  // own delivery is included) to the first refused call's answer; and the calls
  // that succeeded though they started after the card said the access had ended.
  const revokes = [];
  const wall = () => performance.timeOrigin + performance.now();
  // One client, registered once (a source may register 20 at once), is
  // approved again in each run after the last run revoked it.
  const name = 'Revoke bench';
  const redirectUri = 'http://127.0.0.1:39123/callback';
  const registered = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' }),
  }).then((r) => r.json());
  const client = { AGENT_CLIENT_ID: registered.client_id, AGENT_REDIRECT_URI: redirectUri };
  const card = `.card[data-agent="${name}"]`;
  for (let i = 0; i < Number(process.env.GATEHOUSE_BENCH_REVOKES ?? 200); i++) {
    const agent = startAgent(`${url}/mcp/demo`, name, client);
    await allowAsProposed(s, agent);
    await s.consentGone();
    await s.window('main');
    await s.click(await s.find('[data-view=agents]'));
    await waitFor('the card to show the new grant', async () =>
      !/No access in force/.test(await s.text(await s.waitFind(card))), { interval: 5 });
    const revoke = await s.waitFind(`${card} [data-testid=revoke-agent]`);
    agent.send({ until_refused: 'list_notes' });
    await agent.next('calling');
    const clickedAt = wall();
    await s.click(revoke);
    await waitFor('the card to show no access', async () =>
      /No access in force/.test(await s.text(await s.find(card))), { interval: 5 });
    const shownAt = wall();
    const { calls } = await agent.next('refused');
    const refused = calls[calls.length - 1];
    revokes.push({
      click_to_refused_ms: +(refused.end - clickedAt).toFixed(1),
      click_to_shown_ms: +(shownAt - clickedAt).toFixed(1),
      ok_after_shown: calls.filter((c) => c.ok && c.start > shownAt).length,
      calls: calls.length,
    });
    agent.stop();
  }
  const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * q) - 1];
  const toRefused = revokes.map((r) => r.click_to_refused_ms);
  out.revoke_click = {
    runs: revokes.length,
    median_click_to_first_refused_ms: median(toRefused),
    p95_click_to_first_refused_ms: pct(toRefused, 0.95),
    p99_click_to_first_refused_ms: pct(toRefused, 0.99),
    median_click_to_card_updated_ms: median(revokes.map((r) => r.click_to_shown_ms)),
    calls_ok_after_card_updated: revokes.reduce((n, r) => n + r.ok_after_shown, 0),
    calls: revokes.reduce((n, r) => n + r.calls, 0),
  };
  await s.delete();
  await driver.stop();
  rmSync(dir, { recursive: true, force: true });
}

// 3. The timeline with many events.
const seed = (db, n) =>
  execFileSync('python3', ['-c', `
import sqlite3, json, random, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
tools = ['list_notes', 'read_note', 'write_note', 'delete_note', 'wait']
agents = [('c%d' % i, 'Agent %d' % i) for i in range(8)]
outs = ['allowed'] * 17 + ['denied', 'error', 'revoked']
now = 1_790_000_000_000
def rows():
    for i in range(n):
        c, a = agents[i % 8]
        t = tools[i % 5]
        yield (now + i * 10, 'tool_call', outs[i % 20], c, a, 'demo' if i % 3 else 'files', t, 'gr_%d' % (i % 8), None, i % 97,
               json.dumps({'arguments': {'title': 'note %d' % i}}))
db.execute('PRAGMA journal_mode=WAL')
db.executemany('INSERT INTO audit_events (at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)', rows())
# The text index as the audit writer keeps it: up to date.
db.execute('INSERT INTO audit_text (rowid, agent, server, tool, kind, actor, detail) SELECT id, agent, server, tool, kind, actor, detail FROM audit_events WHERE id > (SELECT upto FROM audit_text_indexed)')
db.execute('UPDATE audit_text_indexed SET upto = (SELECT MAX(id) FROM audit_events)')
db.commit()
`, db, String(n)]);

for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  // Let the app create the schema, then add the events while it is stopped.
  const first = await launchDirect(dir);
  await stopChild(first.child);
  const seedStart = performance.now();
  seed(join(dir, 'gatehouse.db'), n);
  const seedMs = performance.now() - seedStart;
  const dbMb = ['gatehouse.db', 'gatehouse.db-wal']
    .map((f) => (existsSync(join(dir, f)) ? statSync(join(dir, f)).size : 0))
    .reduce((a, b) => a + b, 0) / 1048576;

  const driver = await startDriver({ GATEHOUSE_NO_TRAY: '1' });
  const s = await Session.create(driver.base, APP, ['--data-dir', dir, '--port', '0']);
  await s.window('main');
  const first_render = await waitFor('the first page', () => s.exec('return window.__gatehouseTimeline || null'), {
    interval: 20,
    timeout: 120_000,
  });
  const filter = (selector, value) =>
    s.execAsync(
      `const [sel, value, done] = arguments;
       const before = window.__gatehouseTimeline.seq;
       const el = document.querySelector(sel);
       const t0 = performance.now();
       if (el.tagName === 'SELECT') { el.value = value; el.dispatchEvent(new Event('change', { bubbles: true })); }
       else { el.value = value; el.dispatchEvent(new Event('input', { bubbles: true })); }
       const poll = () => {
         const t = window.__gatehouseTimeline;
         if (t.seq > before) done({ ms: performance.now() - t0, total: t.total, queryMs: t.queryMs });
         else setTimeout(poll, 5);
       };
       poll();`,
      [selector, value],
    );
  const byOutcome = await filter('[data-testid=outcome]', 'denied');
  const cleared = await filter('[data-testid=outcome]', '');
  const bySearch = await filter('[data-testid=search]', 'note 4242');
  await filter('[data-testid=search]', '');
  // Scrolling deep into the list pages in more rows (windowed: the DOM stays small).
  const scroll = await s.execAsync(
    `const done = arguments[0];
     const el = document.querySelector('[data-testid=timeline]');
     const t0 = performance.now();
     el.scrollTop = 400 * 30;
     requestAnimationFrame(() => requestAnimationFrame(() =>
       done({ ms: performance.now() - t0, dom_rows: document.querySelectorAll('.spacer-rows .row').length })));`,
  );
  await sleep(500);
  const domRowsLater = await s.exec("return document.querySelectorAll('.spacer-rows .row').length");
  await s.screenshot(process.env.GATEHOUSE_ARTIFACTS ?? '../test-artifacts/bench', `timeline-${n}`);
  out[`timeline_${n}`] = {
    dom_rows_after_scroll_settled: domRowsLater,
    seed_ms: Math.round(seedMs),
    database_mb: +dbMb.toFixed(1),
    first_page_query_ms: Math.round(first_render.queryMs),
    first_render_ms: Math.round(first_render.paintedMs),
    total: first_render.total,
    filter_outcome_denied: { ms: Math.round(byOutcome.ms), query_ms: Math.round(byOutcome.queryMs), matches: byOutcome.total },
    clear_filter_ms: Math.round(cleared.ms),
    search_text: { ms: Math.round(bySearch.ms), query_ms: Math.round(bySearch.queryMs), matches: bySearch.total },
    scroll_frame_ms: Math.round(scroll.ms),
    dom_rows_rendered: scroll.dom_rows,
  };
  await s.delete();
  await driver.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log(JSON.stringify(out, null, 2));
process.exit(0);
