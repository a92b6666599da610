/**
 * A screen redrawn in place, like `top`: the terminal's alternate screen, the
 * cursor hidden, every frame written from the top-left corner; restored on close
 * (and on exit, should the process end without closing it).
 */

/** The terminal stdout writes to. */
export interface Terminal {
  readonly write: (text: string) => void;
  readonly size: () => { readonly columns: number; readonly rows: number };
  /** Calls `listener` when the terminal is resized; returns what stops that. */
  readonly onResize: (listener: () => void) => () => void;
}

const ENTER = '\u001b[?1049h\u001b[?25l'; // alternate screen, cursor hidden
const LEAVE = '\u001b[?25h\u001b[?1049l'; // cursor shown, normal screen back
const HOME = '\u001b[H';
const CLEAR_LINE_END = '\u001b[K';
const CLEAR_BELOW = '\u001b[J';

export class LiveScreen {
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopResize: (() => void) | undefined;
  private open = false;
  private readonly restore = (): void => this.terminal.write(LEAVE);

  /** `frame` renders the lines of the screen for a size; it is redrawn every `tickMs` (the ages move). */
  constructor(
    private readonly terminal: Terminal,
    private readonly frame: (columns: number, rows: number) => readonly string[],
    private readonly tickMs = 1000,
  ) {}

  start(): void {
    if (this.open) return;
    this.open = true;
    this.terminal.write(ENTER);
    process.once('exit', this.restore);
    this.stopResize = this.terminal.onResize(() => this.draw());
    this.timer = setInterval(() => this.draw(), this.tickMs);
    this.draw();
  }

  draw(): void {
    if (!this.open) return;
    const { columns, rows } = this.terminal.size();
    const lines = this.frame(columns, rows).slice(0, rows);
    this.terminal.write(`${HOME}${lines.join(`${CLEAR_LINE_END}\r\n`)}${CLEAR_LINE_END}${CLEAR_BELOW}`);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    clearInterval(this.timer);
    this.stopResize?.();
    process.off('exit', this.restore);
    this.restore();
  }
}
