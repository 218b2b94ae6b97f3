// Shows an uncaught error in the window instead of a blank page.
export function reportFatalErrors(): void {
  const show = (message: string) => {
    let el = document.getElementById('fatal');
    if (!el) {
      el = document.createElement('pre');
      el.id = 'fatal';
      el.setAttribute('role', 'alert');
      document.body.appendChild(el);
    }
    el.textContent = `Something went wrong: ${message}`;
  };
  window.addEventListener('error', (e) => show(String(e.error?.stack ?? e.message)));
  window.addEventListener('unhandledrejection', (e) => show(String(e.reason?.stack ?? JSON.stringify(e.reason))));
}
