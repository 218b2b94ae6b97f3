// A small W3C WebDriver client (just what the e2e tests use) over fetch,
// talking to tauri-driver, which drives WebKitWebDriver, which drives the real
// app in its real WebKitGTK webview.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function waitFor(what, f, { timeout = 15_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(interval);
  }
}

/** Starts tauri-driver on free ports; `env` reaches the app it launches. */
export async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const child = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never leave a driver (and the app it started) behind, even when a script throws.
  const orphan = () => child.kill('SIGTERM');
  process.once('exit', orphan);
  child.once('exit', () => process.off('exit', orphan));
  const log = [];
  child.stdout.on('data', (d) => log.push(d.toString()));
  child.stderr.on('data', (d) => log.push(d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('tauri-driver', async () => (await fetch(`${base}/status`)).ok, { timeout: 10_000 });
  return {
    base,
    log,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => (child.kill('SIGKILL'), r()), 5_000);
        child.once('exit', () => (clearTimeout(t), r()));
      });
    },
  };
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async create(base, application, args = []) {
    const res = await fetch(`${base}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application, args } } },
      }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`new session failed: ${JSON.stringify(body)}`);
    return new Session(base, body.value.sessionId);
  }

  async cmd(method, path, body) {
    const res = await fetch(`${this.base}/session/${this.id}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(`${method} ${path}: ${json.value?.error ?? res.status} ${json.value?.message ?? ''}`);
      err.code = json.value?.error;
      throw err;
    }
    return json.value;
  }

  async delete() {
    await fetch(`${this.base}/session/${this.id}`, { method: 'DELETE' }).catch(() => {});
  }

  handles() {
    return this.cmd('GET', '/window/handles');
  }
  switchTo(handle) {
    return this.cmd('POST', '/window', { handle });
  }
  url() {
    return this.cmd('GET', '/url');
  }
  title() {
    return this.cmd('GET', '/title');
  }

  /** Switches to the consent window or the main window; waits until it exists. */
  /** Switches to the main window, or to the consent window once it is on screen (it is kept hidden between requests). */
  async window(which, opts) {
    return waitFor(`the ${which} window`, async () => {
      const h = await this.findWindow(which);
      if (h && which === 'consent' && (await this.exec('return document.visibilityState')) !== 'visible') return null;
      return h;
    }, opts);
  }

  /** Switches to the window (shown or not); its handle, or null. */
  async findWindow(which) {
    for (const h of await this.handles()) {
      await this.switchTo(h);
      if ((await this.url()).includes('consent.html') === (which === 'consent')) return h;
    }
    return null;
  }

  /** Whether the consent window is on screen now. */
  async consentShowing() {
    const h = await this.findWindow('consent');
    return h !== null && (await this.exec('return document.visibilityState')) === 'visible';
  }

  /** Waits until the consent window is off screen (hidden, kept for the next request). */
  async consentGone(opts) {
    await waitFor('the consent window to hide', async () => !(await this.consentShowing()), opts);
  }

  async find(css) {
    const v = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return v[ELEMENT];
  }
  async findAll(css) {
    const v = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return v.map((e) => e[ELEMENT]);
  }
  async waitFind(css, opts) {
    return waitFor(`element ${css}`, () => this.find(css), opts);
  }
  click(el) {
    return this.cmd('POST', `/element/${el}/click`, {});
  }
  /**
   * Clicks a button that hides its own window (the consent window's Allow and
   * Deny). Through the page's own click(): a WebDriver click waits for the
   * window to render again, which a window hidden by the click never does.
   */
  async clickClosing(el) {
    await this.exec('arguments[0].click()', [{ [ELEMENT]: el }]).catch((e) => {
      if (e.code !== 'no such window') throw e;
    });
  }
  /** The element's text content (as in the DOM, whatever CSS does to it). */
  text(el) {
    return this.exec('return arguments[0].textContent', [{ [ELEMENT]: el }]);
  }
  enabled(el) {
    return this.cmd('GET', `/element/${el}/enabled`);
  }
  selected(el) {
    return this.cmd('GET', `/element/${el}/selected`);
  }
  attribute(el, name) {
    return this.cmd('GET', `/element/${el}/attribute/${name}`);
  }
  type(el, text) {
    return this.cmd('POST', `/element/${el}/value`, { text });
  }
  exec(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }
  execAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }
  async pressKey(key) {
    await this.cmd('POST', '/actions', {
      actions: [{ type: 'key', id: 'kbd', actions: [{ type: 'keyDown', value: key }, { type: 'keyUp', value: key }] }],
    });
    await this.cmd('DELETE', '/actions').catch(() => {});
  }

  /** Saves a PNG of the current window's viewport to `dir/name.png`. */
  async screenshot(dir, name) {
    // A screenshot right after a change can show the previous frame.
    await sleep(400);
    const b64 = await this.cmd('GET', '/screenshot');
    mkdirSync(dir, { recursive: true });
    const path = `${dir}/${name}.png`;
    writeFileSync(path, Buffer.from(b64, 'base64'));
    return path;
  }
}

export const KEYS = { Escape: '\uE00C', Enter: '\uE007' };
