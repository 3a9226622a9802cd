// Debian's Chromium as the browser tests and bench/dashboard.mjs drive it with playwright-core.
import { existsSync } from 'node:fs';

/** Where Debian installs Chromium (`apt install chromium`; .ci/run does). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Whether the browser is here (tests skip with a message otherwise). */
export const haveChromium = (): boolean => existsSync(CHROMIUM_PATH);

/** `chromium.launch()` options: headless, no sandbox (CI runs as root), no network of its own. */
export const CHROMIUM_LAUNCH = {
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
