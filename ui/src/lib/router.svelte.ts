// A tiny history router: the current path and query as reactive state.

export type Route =
  | { name: 'events' }
  | { name: 'event'; id: string }
  | { name: 'deliveries' }
  | { name: 'dashboard' }
  | { name: 'secrets' }
  | { name: 'settings' }
  | { name: 'welcome' }
  | { name: 'not_found' };

export function match(path: string): Route {
  const p = path.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/events') return { name: 'events' };
  const m = /^\/events\/([^/]+)$/.exec(p);
  if (m) return { name: 'event', id: decodeURIComponent(m[1]) };
  switch (p) {
    case '/deliveries':
      return { name: 'deliveries' };
    case '/dashboard':
      return { name: 'dashboard' };
    case '/secrets':
      return { name: 'secrets' };
    case '/settings':
      return { name: 'settings' };
    case '/welcome':
      return { name: 'welcome' };
    default:
      return { name: 'not_found' };
  }
}

class Location {
  path = $state(window.location.pathname);
  search = $state(window.location.search);
  route = $derived(match(this.path));

  constructor() {
    window.addEventListener('popstate', () => this.sync());
  }

  sync() {
    this.path = window.location.pathname;
    this.search = window.location.search;
  }

  /** Go to `url` (path + query); `replace` keeps the history entry. */
  go(url: string, replace = false) {
    if (url === window.location.pathname + window.location.search) return;
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    this.sync();
    if (!replace) window.scrollTo(0, 0);
  }
}

export const location = new Location();

/** `onclick` for in-app links: plain clicks navigate without a reload. */
export function link(e: MouseEvent) {
  const a = (e.currentTarget as HTMLElement).closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/')) return;
  e.preventDefault();
  location.go(href);
}

/** Where "back to events" goes: the events view with its last filter. */
export const memory = { eventsUrl: '/' };
