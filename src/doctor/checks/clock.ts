/** Doctor: the local clock is plausible; with --probe, close to the source server's. */
import { type CheckResult, check } from '../report.js';

/** Before this, the clock is certainly wrong (keybroker did not exist). */
const EARLIEST_SANE_MS = Date.UTC(2025, 0, 1);
const LATEST_SANE_MS = Date.UTC(2100, 0, 1);
const MAX_SKEW_MS = 30_000;

export function clockCheck(nowMs: number, probe = false): CheckResult {
  const at = new Date(nowMs).toISOString();
  if (nowMs < EARLIEST_SANE_MS || nowMs > LATEST_SANE_MS) {
    return check('clock', 'fail', `the local clock says ${at}`, {
      code: 'ERR_CLOCK_SKEW',
      hint: 'set the system clock (enable NTP); tokens minted now would be rejected as not yet valid or expired',
    });
  }
  // With --probe, clock.skew compares it with the server's below.
  const how = probe ? '' : " (compared with the source's server only with --probe)";
  return check('clock', 'pass', `local clock ${at}${how}`);
}

export function skewCheck(nowMs: number, serverMs: number, server: string): CheckResult {
  const skew = nowMs - serverMs;
  const s = Math.round(skew / 1000);
  if (Math.abs(skew) > MAX_SKEW_MS) {
    return check(
      'clock.skew',
      'fail',
      `the local clock is ${Math.abs(s)} s ${skew > 0 ? 'ahead of' : 'behind'} ${server}`,
      {
        code: 'ERR_CLOCK_SKEW',
        hint: 'set the system clock (enable NTP)',
      },
    );
  }
  return check('clock.skew', 'pass', `within ${MAX_SKEW_MS / 1000} s of ${server}`);
}
