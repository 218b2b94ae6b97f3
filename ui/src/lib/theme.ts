// The app's look: the Theme setting, where "system" follows the system's
// light or dark choice (and its changes). Sets data-theme on <html>, which
// base.css reads.

import type { Theme } from '../bindings';

const darkQuery = () => (typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null);

/** Whether a theme setting means dark, given what the system prefers. */
export function isDark(theme: Theme, systemDark: boolean): boolean {
  return theme === 'dark' || (theme === 'system' && systemDark);
}

let current: Theme = 'system';
let listening = false;

export function applyTheme(theme: Theme) {
  current = theme;
  const query = darkQuery();
  const paint = () => {
    document.documentElement.dataset.theme = isDark(current, query?.matches ?? false) ? 'dark' : 'light';
  };
  if (query && !listening) {
    query.addEventListener('change', paint);
    listening = true;
  }
  paint();
}
