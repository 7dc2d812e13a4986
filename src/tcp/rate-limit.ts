/**
 * Per-connection limits on ACKs that a guest can provoke at will, so that a
 * flood of forged or stale segments cannot turn us into an ACK generator and
 * two confused endpoints cannot ACK each other forever.
 *
 * - Challenge ACKs (RFC 5961 §7): at most `perSecond` in any one-second
 *   window. RFC 5961 suggests a system-wide limit; Linux keeps one per
 *   network namespace (net.ipv4.tcp_challenge_ack_limit, 1000/s). A
 *   per-connection budget needs no shared state and cannot be drained by one
 *   flow to silence another (the side channel of CVE-2016-5696).
 * - ACKs to out-of-window segments without data (Linux tcp_oow_rate_limited,
 *   net.ipv4.tcp_invalid_ratelimit = 500 ms): at most one per interval.
 */
export class AckBudget {
  private windowStartMs = -Infinity;
  private used = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
  ) {}

  /** True iff one more ACK may be sent now (and counts it). */
  take(nowMs: number): boolean {
    if (nowMs - this.windowStartMs >= this.windowMs) {
      this.windowStartMs = nowMs;
      this.used = 0;
    }
    if (this.used >= this.perWindow) return false;
    this.used++;
    return true;
  }
}
