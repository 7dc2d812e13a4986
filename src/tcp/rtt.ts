/**
 * Retransmission timeout estimator (RFC 6298), with round-trip samples from
 * either timestamps (RFC 7323 §4) or one timed segment at a time (Karn's
 * algorithm, RFC 6298 §3).
 *
 *   first sample R:  SRTT = R, RTTVAR = R/2                      (§2.2)
 *   later samples:   RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|
 *                    SRTT   = 7/8·SRTT   + 1/8·R                 (§2.3)
 *   RTO = SRTT + max(G, 4·RTTVAR), clamped to [rtoMin, rtoMax]   (§2.4, §2.5)
 *   on expiry:       RTO = min(2·RTO, rtoMax)                    (§5.5)
 *
 * rtoMin comes from the config: RFC 6298 §2.4 says 1 s, Linux uses 200 ms and
 * the guest link is local, so usernet follows Linux (contract.ts defaults).
 * With timestamps, every ACK that advances SND.UNA gives a sample (RFC 7323
 * §4.1), as Linux does; the RFC 7323 §4.2 per-window gain adjustment is not
 * applied (Linux does not either).
 */

/** Clock granularity G of RFC 6298 §2.4: our clock is in milliseconds. */
const GRANULARITY_MS = 1;

export class RttEstimator {
  srttMs = 0;
  rttvarMs = 0;
  rtoMs: number;
  hasSample = false;
  /** Karn timing (no timestamps): the segment whose ACK we wait for, and when it left. */
  private timing = false;
  private timedSeqEnd = 0;
  private timedAtMs = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    initialMs: number,
  ) {
    this.rtoMs = this.clamp(initialMs);
  }

  /** Feeds one round-trip measurement. */
  sample(rttMs: number): void {
    if (rttMs < 0) return;
    if (!this.hasSample) {
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
      this.hasSample = true;
    } else {
      const err = this.srttMs - rttMs;
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * (err < 0 ? -err : err);
      this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
    }
    this.rtoMs = this.clamp(this.srttMs + Math.max(GRANULARITY_MS, 4 * this.rttvarMs));
  }

  /** RFC 6298 §5.5: the timer expired, back off. */
  backoff(): void {
    this.rtoMs = Math.min(this.rtoMs * 2, this.maxMs);
  }

  /** Starts timing the segment ending at `seqEnd`, unless one is being timed already. */
  startTiming(seqEnd: number, nowMs: number): void {
    if (this.timing) return;
    this.timing = true;
    this.timedSeqEnd = seqEnd;
    this.timedAtMs = nowMs;
  }

  /** Karn's algorithm: a retransmission makes the timed segment's ACK ambiguous. */
  cancelTiming(): void {
    this.timing = false;
  }

  /** The ACK covering the timed segment arrived (the caller checked `timedEnd`): take the sample. */
  finishTiming(nowMs: number): void {
    if (!this.timing) return;
    this.timing = false;
    this.sample(nowMs - this.timedAtMs);
  }

  get isTiming(): boolean {
    return this.timing;
  }

  get timedEnd(): number {
    return this.timedSeqEnd;
  }

  private clamp(ms: number): number {
    return ms < this.minMs ? this.minMs : ms > this.maxMs ? this.maxMs : ms;
  }
}
