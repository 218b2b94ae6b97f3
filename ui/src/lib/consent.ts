// The consent window's logic, kept free of the DOM and of Tauri so it can be
// unit-tested: which request to show, the tools grouped by risk with their
// default ticks, the group checkboxes, and the Allow delay.

import type { Approval, AskDefault, DurationChoice, PendingItem, Risk, RuleChoice, Tool } from '../bindings';

/** How long a request is on screen before Allow works (the Rust side checks it too). */
export const ALLOW_DELAY_MS = 1000;

export interface ToolGroup {
  risk: Risk;
  title: string;
  hint: string;
  tools: Tool[];
}

const GROUPS: { risk: Risk; title: string; hint: string }[] = [
  { risk: 'read', title: 'Reads', hint: 'Looks at things; changes nothing.' },
  { risk: 'write', title: 'Changes', hint: 'Creates or changes things.' },
  { risk: 'destructive', title: 'Destructive', hint: 'Can delete or overwrite for good.' },
];

/** The tools in three groups (reads, changes, destructive); empty groups are left out. */
export function groupTools(tools: Tool[]): ToolGroup[] {
  return GROUPS.map((g) => ({ ...g, tools: tools.filter((t) => t.risk === g.risk) })).filter(
    (g) => g.tools.length > 0,
  );
}

/**
 * Read-only tools start ticked; tools that change or destroy start unticked.
 * The agent's rules, where they say something, win: allow and ask tick, deny unticks.
 */
export function defaultSelection(tools: Tool[], rules: RuleChoice[] = []): Set<string> {
  const ruled = new Map(rules.map((r) => [r.tool, r.action]));
  return new Set(
    tools
      .filter((t) => {
        const rule = ruled.get(t.name);
        return rule ? rule !== 'deny' : t.risk === 'read';
      })
      .map((t) => t.name),
  );
}

/** Which tools, once ticked, ask before each call: by the setting (destructive ones, or none), or as the rules say. */
export function defaultAsking(tools: Tool[], askDefault: AskDefault, rules: RuleChoice[] = []): Set<string> {
  const ruled = new Map(rules.map((r) => [r.tool, r.action]));
  return new Set(
    tools
      .filter((t) => {
        const rule = ruled.get(t.name);
        return rule ? rule === 'ask' : askDefault === 'destructive' && t.risk === 'destructive';
      })
      .map((t) => t.name),
  );
}

export type GroupState = 'all' | 'none' | 'some';

export function groupState(group: ToolGroup, selected: Set<string>): GroupState {
  const n = group.tools.filter((t) => selected.has(t.name)).length;
  return n === 0 ? 'none' : n === group.tools.length ? 'all' : 'some';
}

/** Clicking a group checkbox: ticks the whole group unless it is all ticked already. */
export function toggleGroup(group: ToolGroup, selected: Set<string>): Set<string> {
  const next = new Set(selected);
  const tick = groupState(group, selected) !== 'all';
  for (const t of group.tools) {
    if (tick) next.add(t.name);
    else next.delete(t.name);
  }
  return next;
}

export function toggleTool(name: string, selected: Set<string>): Set<string> {
  const next = new Set(selected);
  if (next.has(name)) next.delete(name);
  else next.add(name);
  return next;
}

/** The chosen tools in the request's own order (what Allow sends). */
export function chosenTools(request: PendingItem, selected: Set<string>): string[] {
  return request.tools.filter((t) => selected.has(t.name)).map((t) => t.name);
}

/**
 * Which request the window shows: the one already on screen while it is still
 * pending (a new arrival must not swap it under the person's cursor), else the
 * oldest.
 */
export function currentRequest(queue: PendingItem[], showingId: string | null): PendingItem | null {
  return queue.find((r) => r.id === showingId) ?? queue[0] ?? null;
}

/**
 * Whether Allow may be pressed: the request has been on screen long enough and,
 * where the person picks tools, something is ticked (`chosen`, or null where
 * nothing is picked: a held call, a change).
 */
export function allowEnabled(shownAt: number | null, now: number, chosen: number | null): boolean {
  return shownAt !== null && now - shownAt >= ALLOW_DELAY_MS && chosen !== 0;
}

/** The durations the window offers. */
export type Duration = 'once' | 'hour' | 'day' | 'forever';

export const DURATIONS: { value: Duration; label: string }[] = [
  { value: 'once', label: 'Once' },
  { value: 'hour', label: '1 hour' },
  { value: 'day', label: '1 day' },
  { value: 'forever', label: 'Until revoked' },
];

const HOUR_MS = 3_600_000;

export function durationChoice(d: Duration): DurationChoice {
  switch (d) {
    case 'once':
      return { kind: 'once' };
    case 'hour':
      return { kind: 'for', ms: HOUR_MS };
    case 'day':
      return { kind: 'for', ms: 24 * HOUR_MS };
    default:
      return { kind: 'forever' };
  }
}

/** The badge under the agent's name. */
export function identityBadge(r: Pick<PendingItem, 'verified' | 'verified_domain'>): {
  tone: 'verified' | 'unverified';
  text: string;
} {
  if (r.verified && r.verified_domain) return { tone: 'verified', text: `Verified: ${r.verified_domain}` };
  if (r.verified) return { tone: 'verified', text: 'Configured by you' };
  return { tone: 'unverified', text: 'Unverified: it named itself' };
}

/** "4:32" until the request is denied on its own. */
export function countdown(expiresAt: number | null, now: number): string {
  if (expiresAt === null) return '';
  const s = Math.max(0, Math.ceil((expiresAt - now) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function allowLabel(n: number): string {
  return n === 0 ? 'Allow' : n === 1 ? 'Allow 1 tool' : `Allow ${n} tools`;
}

/** The one sentence under the agent's name, in parts (the server is shown in bold). */
export function askSentence(r: Pick<PendingItem, 'kind' | 'tools'>): { before: string; after: string } {
  switch (r.kind) {
    case 'step_up':
      return { before: 'wants more tools on ', after: ' on this computer' };
    case 'tool_call':
      return { before: `wants to run ${r.tools[0]?.name ?? 'a tool'} on `, after: ' now' };
    case 'tool_changed':
      return { before: `${r.tools[0]?.name ?? 'A tool'} changed on `, after: ' since you allowed it' };
    case 'instructions_changed':
      return { before: '', after: ' changed the instructions it gives this agent' };
    default:
      return { before: 'wants to use ', after: ' on this computer' };
  }
}

/** The Allow and Deny button labels for each kind of question. */
export function buttonLabels(kind: PendingItem['kind'], chosen: number): { allow: string; deny: string } {
  switch (kind) {
    case 'tool_call':
      return { allow: 'Allow once', deny: 'Deny' };
    case 'tool_changed':
      return { allow: 'Allow new version', deny: 'Keep blocked' };
    case 'instructions_changed':
      return { allow: 'Allow new instructions', deny: 'Keep the old ones' };
    default:
      return { allow: allowLabel(chosen), deny: 'Deny' };
  }
}

/** Whether the person picks tools (and, for a first authorization, a duration). */
export function picksTools(kind: PendingItem['kind']): boolean {
  return kind === 'authorization' || kind === 'step_up';
}

/** Tools to send with Allow: the ticked ones, or, for a held call or a changed tool, the one in question. */
export function toolsToSend(request: PendingItem, selected: Set<string>): string[] {
  return picksTools(request.kind) ? chosenTools(request, selected) : request.tools.map((t) => t.name);
}

/** What the person chose, besides the ticks: which ticked tools ask each call, and the extras. */
export interface Extras {
  asking: Set<string>;
  askForMore: boolean;
  remember: boolean;
}

/** What Allow sends: the ticked tools, which of them ask before each call, for how long, and the extras. */
export function approvalFor(request: PendingItem, selected: Set<string>, duration: Duration, extras?: Extras): Approval {
  const tools = toolsToSend(request, selected);
  const picking = picksTools(request.kind);
  return {
    tools: { kind: 'only', tools },
    ask: extras && picking ? { kind: 'only', tools: tools.filter((t) => extras.asking.has(t)) } : { kind: 'destructive' },
    duration: durationChoice(duration),
    ask_for_more: (extras?.askForMore ?? false) && request.kind === 'authorization',
    remember: (extras?.remember ?? false) && picking,
  };
}
