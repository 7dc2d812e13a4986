/**
 * The stack-wide TCP buffer budget (`bufferBytes`, tcp-nat.ts has the
 * theory of operation): bytes all flows hold together, in the endpoints'
 * send buffers and in host sockets not yet flushed. Over it, flows that
 * would take more are held back; below three quarters of it they are all
 * released again.
 */

/** A flow as the budget sees it. */
export interface BudgetedFlow {
  /** In the held-back list (set and cleared by the budget). */
  heldBack: boolean;
  /** The budget recovered: read from the host again and report the real window. */
  budgetRecovered(nowMs: number): void;
}

export class TcpBudget {
  /** Bytes all flows hold now (TcpFlow.account). */
  private held = 0;
  /** Flows held back, to release when the budget recovers. */
  private readonly heldBack: BudgetedFlow[] = [];
  /** Times a flow was held back. */
  holds = 0;

  constructor(
    readonly bufferBytes: number,
    private readonly now: () => number,
    /** Called after flows were released: flush and re-arm. */
    private readonly kick: () => void,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.held;
  }

  /** Whether the budget is used up. */
  get overBudget(): boolean {
    return this.held >= this.bufferBytes;
  }

  /** What is left of the budget (negative when over it). */
  get spareBytes(): number {
    return this.bufferBytes - this.held;
  }

  /** A flow's share of the budget changed by `delta` bytes. */
  account(delta: number): void {
    this.held += delta;
    if (delta < 0 && this.heldBack.length > 0 && this.held < this.bufferBytes - (this.bufferBytes >> 2)) this.release();
  }

  /** Remembers a flow held back by the budget (once). */
  holdBack(flow: BudgetedFlow): void {
    if (flow.heldBack) return;
    flow.heldBack = true;
    this.holds++;
    this.heldBack.push(flow);
  }

  private release(): void {
    const flows = this.heldBack.splice(0);
    const now = this.now();
    for (const flow of flows) {
      flow.heldBack = false;
      flow.budgetRecovered(now);
    }
    this.kick();
  }
}
