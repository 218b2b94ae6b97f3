import { describe, expect, it } from 'vitest';
import { inert, inertJson } from './inert';

// The same cases as src/text.rs.
describe('inert', () => {
  it('keeps escapes from reaching the screen', () => {
    const hostile = 'read\u001b]52;c;ZXZpbA==\u0007\u001b[2J\r\u001b]8;;https://evil/\u001b\\x';
    expect(inert(hostile)).toBe('read\\u{1B}]52;c;ZXZpbA==\\u{7}\\u{1B}[2J\\u{D}\\u{1B}]8;;https://evil/\\u{1B}\\x');
  });

  it('shows bidi and invisible characters', () => {
    expect(inert('Claude\u202eedoC')).toBe('Claude\\u{202E}edoC');
    expect(inert('Clau\u200bde')).toBe('Clau\\u{200B}de');
    expect(inert('\ufeffx\u2066y\u2069')).toBe('\\u{FEFF}x\\u{2066}y\\u{2069}');
    expect(inert('a\u2028b')).toBe('a\\u{2028}b');
    expect(inert('tag\u{E0041}')).toBe('tag\\u{E0041}');
  });

  it('leaves ordinary text alone', () => {
    for (const ok of ['Claude Code', 'read_note', 'Ünïcödé — ok', '日本語のツール', 'emoji 🚀']) {
      expect(inert(ok)).toBe(ok);
    }
  });

  it('keeps JSON readable across lines', () => {
    expect(inertJson({ title: 'a\u202eb' })).toBe('{\n  "title": "a\\u{202E}b"\n}');
  });
});
