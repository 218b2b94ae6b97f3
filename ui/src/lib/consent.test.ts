import { describe, expect, it } from 'vitest';
import type { PendingItem, Tool } from '../bindings';
import {
  ALLOW_DELAY_MS,
  allowEnabled,
  allowLabel,
  approvalFor,
  askSentence,
  buttonLabels,
  chosenTools,
  countdown,
  currentRequest,
  defaultAsking,
  defaultSelection,
  groupState,
  groupTools,
  identityBadge,
  picksTools,
  toggleGroup,
  toggleTool,
  toolsToSend,
} from './consent';

const tool = (name: string, risk: Tool['risk']): Tool => ({ name, title: null, description: '', risk });
const tools = [tool('list_notes', 'read'), tool('delete_note', 'destructive'), tool('read_note', 'read'), tool('write_note', 'write')];
const request = (id: string, extra: Partial<PendingItem> = {}): PendingItem => ({
  id,
  kind: 'authorization',
  client_id: 'c1',
  client_name: 'Agent',
  verified: false,
  verified_domain: null,
  program: null,
  rule_choices: [],
  lookalike_of: null,
  redirect_host: '127.0.0.1:3000',
  server: 'demo',
  phrase: 'amber-falcon-42',
  tools,
  granted_tools: [],
  arguments: null,
  argument_fields: [],
  changes: [],
  instructions: null,
  created_at: 0,
  expires_at: 300_000,
  ...extra,
});

describe('tool groups', () => {
  it('groups reads, changes, destructive in that order and drops empty groups', () => {
    const groups = groupTools(tools);
    expect(groups.map((g) => g.risk)).toEqual(['read', 'write', 'destructive']);
    expect(groups[0].tools.map((t) => t.name)).toEqual(['list_notes', 'read_note']);
    expect(groupTools([tool('a', 'write')]).map((g) => g.title)).toEqual(['Changes']);
  });

  it('ticks only the read-only tools by default', () => {
    expect([...defaultSelection(tools)].sort()).toEqual(['list_notes', 'read_note']);
  });

  it('group checkbox is all / some / none and toggles the whole group', () => {
    const [reads, writes] = groupTools(tools);
    let sel = defaultSelection(tools);
    expect(groupState(reads, sel)).toBe('all');
    expect(groupState(writes, sel)).toBe('none');
    sel = toggleTool('read_note', sel);
    expect(groupState(reads, sel)).toBe('some');
    sel = toggleGroup(reads, sel); // some -> all
    expect(groupState(reads, sel)).toBe('all');
    sel = toggleGroup(reads, sel); // all -> none
    expect(groupState(reads, sel)).toBe('none');
  });

  it('sends the chosen tools in the request order', () => {
    const sel = new Set(['write_note', 'list_notes']);
    expect(chosenTools(request('a'), sel)).toEqual(['list_notes', 'write_note']);
  });
});

describe('queue', () => {
  it('keeps the request on screen while it is pending, else shows the oldest', () => {
    const q = [request('a'), request('b')];
    expect(currentRequest(q, null)?.id).toBe('a');
    expect(currentRequest(q, 'b')?.id).toBe('b');
    expect(currentRequest([request('c'), request('b')], 'b')?.id).toBe('b');
    expect(currentRequest(q, 'gone')?.id).toBe('a');
    expect(currentRequest([], 'a')).toBeNull();
  });
});

describe('allow delay', () => {
  it('stays disabled for a second after the request is shown, and with nothing ticked', () => {
    expect(allowEnabled(null, 10_000, 2)).toBe(false);
    expect(allowEnabled(1_000, 1_000 + ALLOW_DELAY_MS - 1, 2)).toBe(false);
    expect(allowEnabled(1_000, 1_000 + ALLOW_DELAY_MS, 2)).toBe(true);
    expect(allowEnabled(1_000, 5_000, 0)).toBe(false);
    expect(allowEnabled(1_000, 5_000, null)).toBe(true);
    expect(allowEnabled(1_000, 1_000 + ALLOW_DELAY_MS - 1, null)).toBe(false);
  });
});

describe('words', () => {
  it('names the identity plainly', () => {
    expect(identityBadge({ verified: true, verified_domain: 'claude.ai' })).toEqual({ tone: 'verified', text: 'Verified: claude.ai' });
    expect(identityBadge({ verified: false, verified_domain: null })).toEqual({ tone: 'unverified', text: 'Unverified: it named itself' });
    expect(identityBadge({ verified: true, verified_domain: null }).text).toBe('Configured by you');
  });
  it('counts down and labels Allow', () => {
    expect(countdown(300_000, 0)).toBe('5:00');
    expect(countdown(61_500, 0)).toBe('1:02');
    expect(countdown(0, 10)).toBe('0:00');
    expect(countdown(null, 10)).toBe('');
    expect(allowLabel(0)).toBe('Allow');
    expect(allowLabel(1)).toBe('Allow 1 tool');
    expect(allowLabel(3)).toBe('Allow 3 tools');
  });
});

describe('kinds of question', () => {
  it('words each kind and its buttons', () => {
    expect(askSentence({ kind: 'authorization', tools })).toEqual({ before: 'wants to use ', after: ' on this computer' });
    expect(askSentence({ kind: 'step_up', tools }).before).toBe('wants more tools on ');
    expect(askSentence({ kind: 'tool_call', tools: [tool('delete_note', 'destructive')] }).before).toBe('wants to run delete_note on ');
    expect(askSentence({ kind: 'tool_changed', tools: [tool('read_note', 'read')] }).before).toBe('read_note changed on ');
    expect(buttonLabels('tool_call', 1)).toEqual({ allow: 'Allow once', deny: 'Deny' });
    expect(buttonLabels('tool_changed', 1)).toEqual({ allow: 'Allow new version', deny: 'Keep blocked' });
    expect(buttonLabels('step_up', 2).allow).toBe('Allow 2 tools');
    expect(askSentence({ kind: 'instructions_changed', tools: [] })).toEqual({
      before: '',
      after: ' changed the instructions it gives this agent',
    });
    expect(buttonLabels('instructions_changed', 0)).toEqual({ allow: 'Allow new instructions', deny: 'Keep the old ones' });
    expect(picksTools('instructions_changed')).toBe(false);
  });

  it('sends the ticked tools, or the one tool a held call or change is about', () => {
    const sel = new Set(['list_notes']);
    expect(toolsToSend(request('a'), sel)).toEqual(['list_notes']);
    expect(toolsToSend(request('a', { kind: 'step_up' }), sel)).toEqual(['list_notes']);
    const held = request('h', { kind: 'tool_call', tools: [tool('delete_note', 'destructive')] });
    expect(toolsToSend(held, new Set())).toEqual(['delete_note']);
    expect(picksTools('tool_changed')).toBe(false);
  });

  it('lets an agent ask for more only on a first authorization, and remembers only what was picked', () => {
    const sel = new Set(['list_notes', 'delete_note']);
    const extras = { asking: new Set(['delete_note']), askForMore: true, remember: true };
    const first = approvalFor(request('a'), sel, 'forever', extras);
    expect(first.ask_for_more).toBe(true);
    expect(first.remember).toBe(true);
    expect(first.ask).toEqual({ kind: 'only', tools: ['delete_note'] });
    expect(approvalFor(request('a'), sel, 'forever').ask_for_more).toBe(false);
    expect(approvalFor(request('s', { kind: 'step_up' }), sel, 'forever', extras).ask_for_more).toBe(false);
    const held = request('h', { kind: 'tool_call', tools: [tool('delete_note', 'destructive')] });
    expect(approvalFor(held, new Set(), 'forever', extras).remember).toBe(false);
  });

  it('starts from the rules where they say something', () => {
    const rules = [
      { tool: 'read_note', action: 'deny' as const, rule_id: 'ru_1' },
      { tool: 'write_note', action: 'ask' as const, rule_id: 'ru_2' },
    ];
    expect([...defaultSelection(tools, rules)].sort()).toEqual(['list_notes', 'write_note']);
    expect([...defaultAsking(tools, 'destructive', rules)].sort()).toEqual(['delete_note', 'write_note']);
    expect([...defaultAsking(tools, 'none')]).toEqual([]);
  });
});
