// One shared ticking clock so relative times refresh together, cheaply.
class Clock {
  now = $state(Date.now());
  constructor() {
    setInterval(() => (this.now = Date.now()), 15_000);
  }
}
export const clock = new Clock();
