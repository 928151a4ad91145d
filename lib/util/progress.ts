/**
 * A progress line for long runs: rewritten in place on a terminal, plain lines
 * (one per step) when stderr is a pipe or a CI log.
 */
export class Progress {
  #total: number;
  readonly #label: string;
  readonly #tty: boolean;
  readonly #stream: NodeJS.WriteStream;
  #done = 0;
  readonly #start = Date.now();

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = Math.max(1, total);
    this.#stream = stream;
    this.#tty = Boolean(stream.isTTY);
  }

  /** Marks one step done and says what it was. */
  tick(what: string): void {
    this.#done++;
    // a step count that was an estimate may be passed: the bar then stays full
    if (this.#done > this.#total) this.#total = this.#done;
    const width = 24;
    const filled = Math.round((this.#done / this.#total) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const secs = ((Date.now() - this.#start) / 1000).toFixed(1);
    const line = `${this.#label} ${bar} ${this.#done}/${this.#total} ${secs}s ${what}`;
    if (this.#tty) this.#stream.write(`\r\x1b[K${line.slice(0, (this.#stream.columns || 100) - 1)}`);
    else this.#stream.write(`${line}\n`);
  }

  /** Clears the line on a terminal. */
  end(): void {
    if (this.#tty) this.#stream.write('\r\x1b[K');
  }
}

/** Formats rows as an aligned text table; numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-\d.,×x%]+$/.test(r[i] ?? '') || (r[i] ?? '') === ''));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}
