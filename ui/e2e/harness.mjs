// Fixtures for the e2e tests: the real app (with a temp data dir and a free
// port) under tauri-driver, and real MCP agents as child processes.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Session, startDriver, waitFor } from './webdriver.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const ARTIFACTS = process.env.GATEHOUSE_ARTIFACTS ?? join(ROOT, 'test-artifacts/e2e');
export const APP =
  process.env.GATEHOUSE_DESKTOP_BIN ?? join(ROOT, 'target/desktop/debug/gatehouse-desktop');

/**
 * Starts the app with a fresh data dir on a free port (and `env` added to its
 * environment); returns the WebDriver session and the app's URL. It has a home
 * of its own, which `seed(home)` may fill first (an AI client's config, say).
 */
export async function startApp(env = {}, seed = (_home) => {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  // A home of its own, so the app's config file is never the person's.
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-home-'));
  seed(home);
  env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...env };
  const driver = await startDriver({ GATEHOUSE_NO_TRAY: '1', RUST_LOG: process.env.RUST_LOG ?? 'info', ...env });
  const started = Date.now();
  let session;
  try {
    session = await Session.create(driver.base, APP, ['--data-dir', dataDir, '--port', '0']);
  } catch (e) {
    await driver.stop();
    throw new Error(`${e.message}\n--- driver log ---\n${driver.log.join('')}`);
  }
  let url;
  let pid;
  try {
    ({ url, pid } = await waitFor('server.json', () => JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8'))));
    await session.window('main');
    await session.waitFind('.sidebar');
  } catch (e) {
    await session.delete();
    await driver.stop();
    throw new Error(`${e.message}\n--- driver and app log ---\n${driver.log.join('')}`);
  }
  return {
    session,
    url,
    dataDir,
    home: env.HOME,
    startedMs: Date.now() - started,
    driverLog: driver.log,
    async stop() {
      await session.delete();
      await driver.stop();
      // WebKitWebDriver does not always end the app it launched (seen about one run in
      // three here): quit it the way the person's system would (SIGTERM: a clean shutdown).
      await endProcess(pid);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A real MCP client (official TypeScript SDK) as a child process, driven by lines. */
export function startAgent(mcpUrl, name, env = {}) {
  const child = spawn(process.execPath, [join(here, 'agent.mjs'), mcpUrl, name], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const events = [];
  const waiters = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    events.push(e);
    for (const w of [...waiters]) w();
  });
  let seen = 0;
  return {
    events,
    /** The agent's process id (the program Gatehouse should see). */
    pid: child.pid,
    /** The next event of this kind (after those already consumed). */
    next(kind, timeout = 30_000) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          for (let i = seen; i < events.length; i++) {
            if (events[i].event === 'error') {
              cleanup();
              return reject(new Error(`agent ${name} failed: ${events[i].message}\n${stderr}`));
            }
            if (events[i].event === kind) {
              seen = i + 1;
              cleanup();
              return resolvePromise(events[i]);
            }
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`agent ${name}: no ${kind} event within ${timeout} ms; got ${JSON.stringify(events)}\n${stderr}`));
        }, timeout);
        const cleanup = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
        };
        waiters.push(check);
        check();
      });
    },
    send(cmd) {
      child.stdin.write(JSON.stringify(cmd) + '\n');
    },
    async call(tool, args = {}) {
      this.send({ call: tool, args });
      return this.next('call');
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

/**
 * The person allows an agent's request as the consent window proposes it
 * (once Allow is enabled); resolves with the agent's `tools` event.
 */
export async function allowAsProposed(session, agent) {
  await agent.next('waiting_page');
  await session.window('consent');
  const allow = await session.waitFind('[data-testid=allow]');
  await waitFor('Allow to be enabled', () => session.enabled(allow), { interval: 50 });
  await session.clickClosing(allow);
  return agent.next('tools');
}

/** Ends a process that is still running: SIGTERM, then SIGKILL after 10 s. */
async function endProcess(pid) {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!pid || !alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, 'SIGKILL');
}
