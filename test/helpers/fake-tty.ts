/**
 * A fake terminal for rendering tests: a writable that says it is a TTY and keeps a screen,
 * interpreting the control sequences readline and cli-progress emit (cursor moves, line and
 * screen clears; colours and modes are ignored). `screen()` is what a person would see after
 * everything written so far, scrollback included.
 */
export class FakeTty {
  readonly isTTY = true;
  columns: number;
  rows = 50;
  /** Everything written, raw. */
  raw = '';
  private lines: string[] = [''];
  private x = 0;
  private y = 0;

  constructor(columns = 120) {
    this.columns = columns;
  }

  write(s: string | Uint8Array, cb?: unknown): boolean {
    const text = typeof s === 'string' ? s : Buffer.from(s).toString('utf8');
    this.raw += text;
    this.feed(text);
    if (typeof cb === 'function') (cb as () => void)();
    return true;
  }

  /** Feeds raw terminal output (e.g. a recorded session) through the emulator. */
  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\x1b') {
        const m = /^\x1b(\[([?0-9;]*)([A-Za-z])|[78])/.exec(text.slice(i, i + 16));
        if (!m) continue;
        i += m[0].length - 1;
        if (m[3]) this.csi(m[2]!, m[3]);
        continue;
      }
      if (c === '\n') {
        // A terminal's line discipline turns LF into CR LF.
        this.y++;
        this.x = 0;
        this.ensure();
      } else if (c === '\r') this.x = 0;
      else this.put(c);
    }
  }

  private csi(params: string, cmd: string): void {
    if (params.startsWith('?')) return; // cursor visibility, line wrapping
    const n = params.split(';').map((p) => (p === '' ? NaN : Number(p)));
    const a = Number.isNaN(n[0]!) ? 1 : n[0]!;
    switch (cmd) {
      case 'A':
        this.y = Math.max(0, this.y - a);
        break;
      case 'B':
        this.y += a;
        this.ensure();
        break;
      case 'C':
        this.x += a;
        break;
      case 'D':
        this.x = Math.max(0, this.x - a);
        break;
      case 'G':
        this.x = a - 1;
        break;
      case 'H':
        this.y = (Number.isNaN(n[0]!) ? 1 : n[0]!) - 1;
        this.x = (Number.isNaN(n[1]!) ? 1 : n[1]!) - 1;
        this.ensure();
        break;
      case 'K': {
        const line = this.lines[this.y]!;
        const mode = Number.isNaN(n[0]!) ? 0 : n[0]!;
        if (mode === 0) this.lines[this.y] = line.slice(0, this.x);
        else if (mode === 1) this.lines[this.y] = ' '.repeat(Math.min(this.x + 1, line.length)) + line.slice(this.x + 1);
        else this.lines[this.y] = '';
        break;
      }
      case 'J': {
        const mode = Number.isNaN(n[0]!) ? 0 : n[0]!;
        if (mode === 0) {
          this.lines[this.y] = this.lines[this.y]!.slice(0, this.x);
          this.lines.length = this.y + 1;
        }
        break;
      }
      default:
        break; // colours (m) and the rest
    }
  }

  private ensure(): void {
    while (this.lines.length <= this.y) this.lines.push('');
  }

  private put(c: string): void {
    this.ensure();
    const line = this.lines[this.y]!.padEnd(this.x, ' ');
    this.lines[this.y] = line.slice(0, this.x) + c + line.slice(this.x + 1);
    this.x++;
  }

  /** The screen as lines, trailing spaces and trailing empty lines removed. */
  screen(): string[] {
    const out = this.lines.map((l) => l.replace(/\s+$/, ''));
    while (out.length && out[out.length - 1] === '') out.pop();
    return out;
  }
}
