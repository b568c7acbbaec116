// App-wide state: signed in or not, and the daemon's health (sources, connections).
import { api, type Connection, type Health } from './api';
import { applyConnection } from './connections';

class Session {
  signedIn = $state<boolean | null>(null);
  health = $state<Health | null>(null);
  connections = $state<Connection[]>([]);
  error = $state<string | null>(null);

  constructor() {
    api.onUnauthorized(() => {
      this.signedIn = false;
    });
  }

  async load() {
    try {
      const h = await api.health();
      this.health = h;
      this.connections = h.connections ?? [];
      this.signedIn = true;
      this.error = null;
    } catch (e) {
      const err = e as { unauthorized?: boolean; message?: string };
      if (err.unauthorized) this.signedIn = false;
      else this.error = err.message ?? String(e);
    }
  }

  updateConnection(c: Connection) {
    this.connections = applyConnection(this.connections, c);
  }
}

export const session = new Session();
