// Text that came from outside (agent names, tool names and descriptions,
// arguments) shown inert: control characters, bidi overrides and invisible
// characters are shown as visible escapes (`\u{202E}`), so nothing an agent
// or a server chose can reorder or hide what the person reads. The same rule
// as the core's `gatehouse::text::inert` (src/text.rs), checked against the
// same cases in inert.test.ts.

const RANGES: [number, number][] = [
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x061c, 0x061c],
  [0x115f, 0x1160],
  [0x17b4, 0x17b5],
  [0x180b, 0x180f],
  [0x200b, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2064],
  [0x2066, 0x206f],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
  [0xfff9, 0xfffb],
  [0xe0000, 0xe007f],
];

export function isUnsafe(codePoint: number): boolean {
  return RANGES.some(([from, to]) => codePoint >= from && codePoint <= to);
}

/** `text` with every unsafe character shown as `\u{XXXX}`. */
export function inert(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    out += isUnsafe(cp) ? `\\u{${cp.toString(16).toUpperCase()}}` : ch;
  }
  return out;
}

/** JSON for display: pretty, each line inert. */
export function inertJson(value: unknown): string {
  return (JSON.stringify(value, null, 2) ?? 'null').split('\n').map(inert).join('\n');
}
