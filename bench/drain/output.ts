// What the drain benchmark says on stderr while it runs: a progress line rewritten in place on a
// terminal (one line every 5 s otherwise), messages that replace it, and the text of an error.
const isTty = process.stderr.isTTY;
let progressShown = false;
let lastProgressLine = 0;
/** The progress line: rewritten in place on a terminal; in a log, one line every 5 s at most. */
export function progress(text: string): void {
  if (isTty) {
    process.stderr.write(`\r\x1b[2K${text}`);
    progressShown = true;
  } else if (Date.now() - lastProgressLine >= 5_000) {
    process.stderr.write(`${text}\n`);
    lastProgressLine = Date.now();
  }
}
/** A message of its own line, clearing a progress line shown in place first. */
export function say(text: string): void {
  if (progressShown) process.stderr.write('\r\x1b[2K');
  progressShown = false;
  process.stderr.write(`${text}\n`);
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e));
